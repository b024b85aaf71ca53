import { PreemptdError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { formatLocation, keyFor, type StoreLocation } from '../stores/location.js';
import { STORE_PAGE_SIZE, type ObjectStore } from '../stores/types.js';
import { readCatalog, type SnapshotRecord } from './catalog.js';
import { CHUNK_NAME, manifestObjects, PACK_NAME } from './repository.js';
import { planRetention, type KeepReason, type RetentionPolicy } from './retention.js';

export interface PruneOptions {
  policy: RetentionPolicy;
  /** Delete; without it nothing is touched and the report says what would go. */
  apply: boolean;
  log: Logger;
  /** The clock the grace and keep-within are measured against. */
  now?: number;
  /** Stops the prune before its next listed key or deleted key (a notice being handled). */
  signal?: AbortSignal;
}

export interface PruneReport {
  kept: { name: string; reasons: KeepReason[] }[];
  /** Manifests deleted (or that would be). */
  manifests: string[];
  /** Packs and chunks stored alone deleted (or that would be). */
  objects: number;
  /** Bytes of those manifests, packs and chunks. */
  bytes: number;
  /** Unreferenced packs and chunks left because they were written within the grace. */
  objectsInGrace: number;
  /** Files a killed writer left (file://'s `.partial`) written before the grace, deleted (or that would be). */
  leftovers: number;
  applied: boolean;
}

/** Where the objects holding chunks are, and the names that are the repository's there (anything else is never deleted). */
const CHUNK_HOMES = [
  ['packs/', PACK_NAME],
  ['chunks/', CHUNK_NAME],
] as const;

/**
 * Applies a retention policy to a dedup repository (docs/snapshot.md, "Retention"):
 * dropped manifests are deleted first, then the packs and chunks no kept manifest names and
 * the grace does not protect. A pack any kept manifest names a chunk of is kept whole. Cut
 * anywhere, it leaves objects no manifest names, never a kept manifest naming a missing one;
 * run again, it finishes the job. A manifest that does not read as one stops the prune
 * before anything is deleted: the objects it needs are unknown.
 */
export async function prune(store: ObjectStore, location: StoreLocation, options: PruneOptions): Promise<PruneReport> {
  const now = options.now ?? Date.now();
  const where = formatLocation(location);
  const catalog = await readCatalog(store, location, options.signal);
  if (catalog.refused.length) {
    const lines = catalog.refused.map((entry) => `  ${entry.name}: ${entry.reason}`);
    const one = catalog.refused.length === 1;
    const which = one ? 'a manifest does' : `${catalog.refused.length} manifests do`;
    throw new PreemptdError('ERR_PRUNE', `${where}: nothing was deleted: ${which} not read as a preemptd manifest (fix or remove ${one ? 'it' : 'them'} first):\n${lines.join('\n')}`);
  }
  if (catalog.pointerRefused !== undefined) throw new PreemptdError('ERR_PRUNE', `${where}: nothing was deleted: ${catalog.pointerRefused}`);
  if (catalog.latest !== undefined && !catalog.snapshots.some((record) => record.name === catalog.latest)) {
    throw new PreemptdError('ERR_PRUNE', `${where}latest.json names ${catalog.latest}, which does not exist; nothing was deleted`);
  }
  const plan = planRetention(catalog.snapshots, catalog.latest, options.policy, now);
  const referenced = referencedObjects(plan.keep.map((entry) => entry.record));
  const graceStart = now - options.policy.graceMs;
  const objects: string[] = [];
  let bytes = plan.drop.reduce((sum, record) => sum + record.size, 0);
  let objectsInGrace = 0;
  for (const [under, repositoryName] of CHUNK_HOMES) {
    for await (const object of store.list(keyFor(location, under))) {
      options.signal?.throwIfAborted();
      const name = object.key.slice(location.prefix.length);
      if (!repositoryName.test(name) || referenced.has(name)) continue;
      if (object.modified > graceStart) {
        objectsInGrace += 1;
        continue;
      }
      objects.push(object.key);
      bytes += object.size;
    }
  }
  // A writer may be filling a fresh one: only those older than the grace go.
  const leftovers: string[] = [];
  for await (const object of store.leftovers?.(location.prefix) ?? []) {
    options.signal?.throwIfAborted();
    if (object.modified > graceStart) continue;
    leftovers.push(object.key);
    bytes += object.size;
  }
  const report: PruneReport = {
    kept: plan.keep.map(({ record, reasons }) => ({ name: record.name, reasons })),
    manifests: plan.drop.map((record) => record.name),
    objects: objects.length,
    bytes,
    objectsInGrace,
    leftovers: leftovers.length,
    applied: options.apply,
  };
  if (!options.apply) return report;
  options.signal?.throwIfAborted();
  // Manifests first: a crash after this leaves unreferenced objects, which the next prune finds.
  await store.delete(plan.drop.map((record) => keyFor(location, record.name)), options.signal);
  options.log.info({ at: where, manifests: report.manifests.length }, 'prune: manifests deleted');
  for (let start = 0; start < objects.length; start += STORE_PAGE_SIZE) await store.delete(objects.slice(start, start + STORE_PAGE_SIZE), options.signal);
  await store.delete(leftovers, options.signal);
  options.log.info({ at: where, manifests: report.manifests.length, objects: objects.length, leftovers: leftovers.length, bytes }, 'prune finished');
  return report;
}

/** The objects (packs and chunks) the kept manifests' chunks are stored in. */
function referencedObjects(records: readonly SnapshotRecord[]): Set<string> {
  const names = new Set<string>();
  for (const { manifest } of records) {
    for (const name of manifestObjects(manifest)) names.add(name);
  }
  return names;
}
