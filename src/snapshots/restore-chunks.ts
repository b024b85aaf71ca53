import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import { formatLocation, keyFor, type StoreLocation } from '../stores/location.js';
import type { ObjectStore } from '../stores/types.js';
import { runningChecksum } from './checksum.js';
import type { ManifestFile, StoredChunk } from './manifest.js';
import type { ChecksumAlgorithm } from './options.js';
import { chunkHome } from './repository.js';
import { insideTarget } from './restore-entries.js';

/** Chunks of one file fetched ahead of the one being written. */
export const CHUNKS_AHEAD = 8;

/**
 * Fetches one chunk and checks it is what its name says: exactly `size` bytes (never more
 * read than that plus one) whose SHA-256 is `sha256`. Anything else names the chunk. The
 * pieces are hashed as they come and kept as they are (no copy into one buffer).
 */
async function fetchChunk(store: ObjectStore, location: StoreLocation, chunk: StoredChunk): Promise<Buffer[]> {
  const [sha256, size] = chunk;
  const name = chunkHome(chunk);
  const range = chunk.length === 4 ? { offset: chunk[3], length: size } : undefined;
  const where = range ? `chunk ${sha256} (bytes ${range.offset}+${size} of ${formatLocation(location)}${name})` : `chunk ${formatLocation(location)}${name}`;
  const pieces: Buffer[] = [];
  const hash = createHash('sha256');
  let length = 0;
  try {
    for await (const piece of await store.get(keyFor(location, name), range)) {
      length += (piece as Buffer).length;
      if (length > size) throw new PreemptdError('ERR_RESTORE', `${where} is larger than the manifest's ${size} bytes`);
      hash.update(piece as Buffer);
      pieces.push(piece as Buffer);
    }
  } catch (error) {
    if (error instanceof PreemptdError) throw error;
    throw new PreemptdError('ERR_RESTORE', `cannot read ${where}: ${errorMessage(error)}`, { cause: error });
  }
  if (length !== size) throw new PreemptdError('ERR_RESTORE', `${where} is ${length} bytes, the manifest says ${size}`);
  const got = hash.digest('hex');
  if (got !== sha256) throw new PreemptdError('ERR_RESTORE', `${where} has SHA-256 ${got}: corrupted`);
  return pieces;
}

/**
 * A dedup file's bytes: its chunks in order, each verified, with CHUNKS_AHEAD fetched in
 * parallel ahead of the writer. A bad chunk ends the stream with its error.
 */
export async function* chunkedBody(store: ObjectStore, location: StoreLocation, file: ManifestFile): AsyncGenerator<Buffer> {
  const chunks = file.chunks ?? [];
  const ahead: Promise<Buffer[]>[] = [];
  let next = 0;
  const fill = () => {
    while (next < chunks.length && ahead.length < CHUNKS_AHEAD) {
      const fetching = fetchChunk(store, location, chunks[next++]!);
      // Awaited in order below; one left behind when the writer stops must not go unhandled.
      fetching.catch(() => undefined);
      ahead.push(fetching);
    }
  };
  fill();
  while (ahead.length > 0) {
    const pieces = await ahead.shift()!;
    fill();
    yield* pieces;
  }
}

/**
 * Whether the file is already in place with the manifest's content (a warm restore): a
 * regular file reached through no link, of the manifest's size and checksum. Read, never written.
 */
export async function alreadyPresent(target: string, file: ManifestFile, checksum: ChecksumAlgorithm): Promise<boolean> {
  const path = insideTarget(target, file.path);
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isFile() || info.size !== file.size) return false;
  if ((await realpath(path)) !== path) return false;
  const running = runningChecksum(checksum);
  let bytes = 0;
  for await (const piece of createReadStream(path) as AsyncIterable<Buffer>) {
    running.update(piece);
    bytes += piece.length;
  }
  return bytes === file.size && running.digest() === file[checksum];
}
