import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { keyFor, type StoreLocation } from '../stores/location.js';
import { onePart } from '../stores/parts.js';
import type { ObjectStore } from '../stores/types.js';
import { manifestSchema, type Manifest } from './manifest.js';
import { readStoredJson } from './stored-json.js';

/**
 * The dedup repository under a destination prefix (docs/snapshot.md, "The dedup repository"):
 * - `chunks/ab/abcdef…`: each chunk once, named by its SHA-256 (the first two hex digits
 *   spread keys over prefixes, for stores that rate-limit per prefix);
 * - `snapshots/<startedAt>-<noticeId>.json`: one manifest per snapshot, written after every
 *   chunk it names is stored;
 * - `latest.json`: the newest complete manifest's name, written after that manifest, so
 *   `restore --latest` reads two small objects and lists nothing.
 */
export const POINTER_NAME = 'latest.json';
export const POINTER_VERSION = 1;

export function chunkName(sha256: string): string {
  return `chunks/${sha256.slice(0, 2)}/${sha256}`;
}

/**
 * Names sort by time: the start in basic ISO form to the millisecond, then the notice made
 * key-safe, then 4 random bytes, so two snapshots of one notice never share a name.
 */
export function snapshotName(startedAt: number, noticeId: string): string {
  const time = new Date(startedAt).toISOString().replace(/[-:]/g, '');
  return `snapshots/${time}-${noticeId.replace(/[^A-Za-z0-9._-]/g, '-')}-${randomBytes(4).toString('hex')}.json`;
}

const pointerSchema = z.object({
  version: z.literal(POINTER_VERSION),
  /** A name under the prefix, never a path that could leave it. */
  manifest: z.string().regex(/^snapshots\/[A-Za-z0-9._-]+\.json$/, { message: 'expected snapshots/<name>.json' }),
  finishedAt: z.string(),
});

export function writeJson(store: ObjectStore, location: StoreLocation, name: string, value: unknown): Promise<void> {
  return store.put(keyFor(location, name), onePart(Buffer.from(`${JSON.stringify(value, null, 2)}\n`)));
}

/** Commits a dedup snapshot: its manifest, then (when complete) the pointer to it. */
export async function commitSnapshot(store: ObjectStore, location: StoreLocation, name: string, manifest: Manifest): Promise<void> {
  await writeJson(store, location, name, manifest);
  if (manifest.complete) await writeJson(store, location, POINTER_NAME, { version: POINTER_VERSION, manifest: name, finishedAt: manifest.finishedAt });
}

export type SnapshotPointer = z.output<typeof pointerSchema>;

/** `latest.json` under the prefix; undefined when the prefix has no pointer yet. */
export async function readPointer(store: ObjectStore, location: StoreLocation): Promise<SnapshotPointer | undefined> {
  if (!(await store.has(keyFor(location, POINTER_NAME)))) return undefined;
  return readStoredJson(store, location, POINTER_NAME, pointerSchema, 'a preemptd snapshot pointer');
}

/** The manifest `latest.json` names, with its name; undefined when the prefix has no pointer yet. */
export async function readLatest(store: ObjectStore, location: StoreLocation): Promise<{ name: string; manifest: Manifest } | undefined> {
  const pointer = await readPointer(store, location);
  if (!pointer) return undefined;
  return { name: pointer.manifest, manifest: await readStoredJson(store, location, pointer.manifest, manifestSchema, 'a preemptd manifest') };
}
