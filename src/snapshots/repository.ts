import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { PreemptdError } from '../lib/errors.js';
import { formatBytes } from '../lib/format.js';
import { jsonBytes } from '../lib/json-bytes.js';
import { keyFor, type StoreLocation } from '../stores/location.js';
import { onePart } from '../stores/parts.js';
import type { ObjectStore } from '../stores/types.js';
import { manifestSchema, type Manifest, type StoredChunk } from './manifest.js';
import { readStoredJson, STORED_JSON_MAX_BYTES } from './stored-json.js';

/**
 * The dedup repository under a destination prefix (docs/snapshot.md, "The dedup repository"):
 * - `packs/<id>`: chunks written together, back to back, in one object of about
 *   PACK_TARGET_BYTES; a manifest names each chunk's pack and offset;
 * - `chunks/ab/abcdef…`: a chunk stored alone, named by its SHA-256 (the format before
 *   packs, manifest version 1: still read and pruned, no longer written);
 * - `snapshots/<startedAt>-<noticeId>.json`: one manifest per snapshot, written after every
 *   chunk it names is stored;
 * - `latest.json`: the newest complete manifest's name, written after that manifest, so
 *   `restore --latest` reads two small objects and lists nothing.
 * Retention (retention.ts, prune.ts) deletes old manifests, then chunks no kept manifest
 * names; the rule that keeps it from deleting a chunk a writer still relies on is
 * docs/snapshot.md's "Retention": a writer relies only on the pointer's manifest and on
 * packs it wrote within CHUNK_REUSE_WINDOW_MS (a sync's record and plans), and prune's grace
 * is longer than that window plus the longest commit.
 */
export const POINTER_NAME = 'latest.json';
export const POINTER_VERSION = 1;

export function chunkName(sha256: string): string {
  return `chunks/${sha256.slice(0, 2)}/${sha256}`;
}

/** A chunk's name; anything else under `chunks/` is not the repository's and is never deleted. */
export const CHUNK_NAME = /^chunks\/([0-9a-f]{2})\/(\1[0-9a-f]{62})$/;

/**
 * Bytes a pack is filled to before it is stored. Objects of a few MiB suit object stores
 * (one request moves a lot, few keys per GB), while chunks stay small enough that a
 * rewritten region re-sends little around it.
 */
export const PACK_TARGET_BYTES = 8 * 1024 * 1024;

/** A pack's name: 96 random bits, so writers on many VMs never pick the same one. */
export function packName(id: string): string {
  return `packs/${id}`;
}

export function newPackId(): string {
  return randomBytes(12).toString('hex');
}

/** A pack's name; anything else under `packs/` is not the repository's and is never deleted. */
export const PACK_NAME = /^packs\/[0-9a-f]{24}$/;

/** The object a stored chunk is in: its pack, or its own object (version 1). */
export function chunkHome(chunk: StoredChunk): string {
  return chunk.length === 4 ? packName(chunk[2]) : chunkName(chunk[0]);
}
/** A manifest's name: nothing below `snapshots/`, nothing that could leave the prefix. */
export const SNAPSHOT_NAME = /^snapshots\/[A-Za-z0-9._-]+\.json$/;

/**
 * How long a writer relies on a pack it stored that no kept manifest names yet (a sync's
 * record and plans). An older one may be deleted by a prune that does not know this writer's
 * manifest yet, so the writer sends its chunks again.
 */
export const CHUNK_REUSE_WINDOW_MS = 60 * 60_000;

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
  manifest: z.string().regex(SNAPSHOT_NAME, { message: 'expected snapshots/<name>.json' }),
  finishedAt: z.string(),
});

/**
 * Stored without indentation: a dedup manifest names every chunk (pack and offset included), and
 * indenting each field of each chunk's entry on its own line took 170 bytes a chunk against 112,
 * against STORED_JSON_MAX_BYTES and on every commit. `jq .` shows it indented. One larger than
 * a reader accepts is refused here, rather than stored as a snapshot nothing could restore.
 */
export async function writeJson(store: ObjectStore, location: StoreLocation, name: string, value: unknown, maxBytes = STORED_JSON_MAX_BYTES): Promise<void> {
  const bytes = jsonBytes(value, '\n');
  if (bytes.length > maxBytes) {
    throw new PreemptdError('ERR_STORE', `${name} not stored: it takes ${formatBytes(bytes.length)}, over the ${formatBytes(maxBytes)} a restore reads (too many chunks for one snapshot: split the paths over several snapshots or syncs)`);
  }
  await store.put(keyFor(location, name), onePart(bytes));
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

export function readManifest(store: ObjectStore, location: StoreLocation, name: string): Promise<Manifest> {
  return readStoredJson(store, location, name, manifestSchema, 'a preemptd manifest');
}

/** Every chunk a manifest's files name, by SHA-256, with where it is stored. */
export function manifestChunks(manifest: Manifest): Map<string, StoredChunk> {
  const chunks = new Map<string, StoredChunk>();
  for (const file of manifest.files) if (file.type === 'file') for (const chunk of file.chunks ?? []) chunks.set(chunk[0], chunk);
  return chunks;
}

/** Every object (pack or chunk) a manifest's chunks are stored in. */
export function manifestObjects(manifest: Manifest): Set<string> {
  return new Set(Array.from(manifestChunks(manifest).values(), chunkHome));
}

/** The manifest `latest.json` names, with its name; undefined when the prefix has no pointer yet. */
export async function readLatest(store: ObjectStore, location: StoreLocation): Promise<{ name: string; manifest: Manifest } | undefined> {
  const pointer = await readPointer(store, location);
  return pointer === undefined ? undefined : { name: pointer.manifest, manifest: await readManifest(store, location, pointer.manifest) };
}
