import { errorMessage } from '../lib/errors.js';
import { keyFor, type StoreLocation } from '../stores/location.js';
import type { ObjectStore } from '../stores/types.js';
import type { Manifest } from './manifest.js';
import { readManifest, readPointer, SNAPSHOT_NAME } from './repository.js';

/** One manifest under `snapshots/`, read and checked. */
export interface SnapshotRecord {
  /** `snapshots/<name>.json`, relative to the prefix. */
  name: string;
  /** When the store says it was written (ms since the epoch). */
  modified: number;
  /** Bytes of the manifest object itself. */
  size: number;
  manifest: Manifest;
}

/** A manifest that could not be read or is not one (a crafted name, a bad SHA-256...). */
export interface RefusedManifest {
  name: string;
  reason: string;
}

export interface Catalog {
  /** Newest first (by `finishedAt`). */
  snapshots: SnapshotRecord[];
  refused: RefusedManifest[];
  /** The manifest `latest.json` names, when there is one. */
  latest: string | undefined;
  /** Why `latest.json` could not be read (not JSON, naming something outside `snapshots/`...). */
  pointerRefused?: string;
}

/** When a snapshot counts as taken: its manifest's `finishedAt`, else when the store wrote it. */
export function snapshotTime(record: SnapshotRecord): number {
  const finished = Date.parse(record.manifest.finishedAt);
  return Number.isFinite(finished) ? finished : record.modified;
}

/**
 * Lists and reads every manifest of a dedup repository. The listing comes first and the
 * pointer after it, so a snapshot committed meanwhile is still named by `latest`; its
 * manifest is then read too. Keys under `snapshots/` that are not a manifest's name are
 * left alone; a manifest that does not read as one is refused, with the reason. `signal`
 * stops it before its next listed key or manifest (a prune a notice stops).
 */
export async function readCatalog(store: ObjectStore, location: StoreLocation, signal?: AbortSignal): Promise<Catalog> {
  const listed: { name: string; modified: number; size: number }[] = [];
  for await (const object of store.list(keyFor(location, 'snapshots/'))) {
    signal?.throwIfAborted();
    const name = object.key.slice(location.prefix.length);
    if (SNAPSHOT_NAME.test(name)) listed.push({ name, modified: object.modified, size: object.size });
  }
  let latest: string | undefined;
  let pointerRefused: string | undefined;
  try {
    latest = (await readPointer(store, location))?.manifest;
  } catch (error) {
    pointerRefused = errorMessage(error);
  }
  if (latest !== undefined && !listed.some((entry) => entry.name === latest)) {
    const info = await store.stat(keyFor(location, latest));
    if (info) listed.push({ name: latest, modified: info.modified, size: info.size });
  }
  const snapshots: SnapshotRecord[] = [];
  const refused: RefusedManifest[] = [];
  for (const entry of listed) {
    signal?.throwIfAborted();
    try {
      snapshots.push({ ...entry, manifest: await readManifest(store, location, entry.name) });
    } catch (error) {
      refused.push({ name: entry.name, reason: errorMessage(error) });
    }
  }
  snapshots.sort((a, b) => snapshotTime(b) - snapshotTime(a) || b.name.localeCompare(a.name));
  return { snapshots, refused, latest, ...(pointerRefused === undefined ? {} : { pointerRefused }) };
}
