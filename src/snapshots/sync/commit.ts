import type { HostFacts } from '../../lib/host.js';
import type { StoreLocation } from '../../stores/location.js';
import type { ObjectStore } from '../../stores/types.js';
import { CHUNKER_VERSION } from '../chunker.js';
import { MANIFEST_VERSION, type Manifest, type ManifestEntry } from '../manifest.js';
import { commitSnapshot, snapshotName } from '../repository.js';
import type { WalkResult } from '../walk.js';

/**
 * Commits what a sync holds as a complete dedup snapshot, with no notice: its manifest (the
 * stored `files` and the symlinks the pass `found`), then latest.json, so a VM that dies
 * without a notice still leaves a restorable checkpoint. Resolves to the manifest's name.
 */
export async function commitSynced(
  store: ObjectStore,
  location: StoreLocation,
  sync: { name: string; host: HostFacts; startedAt: number; files: ManifestEntry[]; found: Pick<WalkResult, 'entries' | 'excluded'> },
): Promise<string> {
  const links: ManifestEntry[] = sync.found.entries.flatMap((entry) => (entry.type === 'symlink' ? [{ type: 'symlink', path: entry.name, target: entry.target }] : []));
  const files = [...sync.files, ...links];
  const finishedAt = new Date().toISOString();
  const bytes = files.reduce((sum, file) => sum + (file.type === 'file' ? file.size : 0), 0);
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    mode: 'dedup',
    chunker: CHUNKER_VERSION,
    checksum: 'crc32',
    archive: null,
    // Not a notice: the sync that committed it (restore and `snapshots list` show it).
    notice: { sync: sync.name },
    host: { ...sync.host },
    startedAt: new Date(sync.startedAt).toISOString(),
    finishedAt,
    // No notice, no deadline: it was complete when committed.
    deadline: finishedAt,
    complete: true,
    bytesWanted: bytes,
    bytesDone: bytes,
    files: files.sort((a, b) => (a.path < b.path ? -1 : 1)),
    skipped: [],
    excluded: sync.found.excluded,
  };
  const name = snapshotName(sync.startedAt, `sync-${sync.name}`);
  await commitSnapshot(store, location, name, manifest);
  return name;
}
