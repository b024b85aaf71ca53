import { createReadStream } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import { formatLocation, keyFor, type StoreLocation } from '../stores/location.js';
import type { ObjectStore } from '../stores/types.js';
import { runningChecksum } from './checksum.js';
import type { ManifestFile } from './manifest.js';
import type { ChecksumAlgorithm } from './options.js';
import { chunkName } from './repository.js';
import { insideTarget, type FileContent } from './restore-entries.js';
import type { ChunkWriters } from './restore-writers.js';
import type { ChunkWritten } from './restore-worker.js';

/** Chunks of one file fetched ahead of the one being written. */
export const CHUNKS_AHEAD = 8;

/** Chunks of one file given to the writing threads and not yet written: room for their batches. */
const WRITES_AHEAD = 32;

/**
 * Fetches one chunk: exactly `size` bytes (never more read than that plus one), kept as they
 * came (a writing thread then verifies them: restore-worker.ts). Anything else names the chunk.
 */
async function fetchChunk(store: ObjectStore, where: string, key: string, size: number): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  let length = 0;
  try {
    for await (const piece of await store.get(key)) {
      length += (piece as Buffer).length;
      if (length > size) throw new PreemptdError('ERR_RESTORE', `${where} is larger than the manifest's ${size} bytes`);
      pieces.push(piece as Buffer);
    }
  } catch (error) {
    if (error instanceof PreemptdError) throw error;
    throw new PreemptdError('ERR_RESTORE', `cannot read ${where}: ${errorMessage(error)}`, { cause: error });
  }
  if (length !== size) throw new PreemptdError('ERR_RESTORE', `${where} is ${length} bytes, the manifest says ${size}`);
  return pieces;
}

/**
 * A dedup file's content: its chunks in order, CHUNKS_AHEAD fetched in parallel ahead, each
 * given to `take` (the file's size and checksum) and then to `writers`, which verify its
 * SHA-256 and write it at its offset. At most WRITES_AHEAD writes wait at once. A bad chunk
 * fails the file naming it; every write has settled before this returns, so the file can be
 * closed.
 */
export function chunkContent(store: ObjectStore, location: StoreLocation, file: ManifestFile, writers: ChunkWriters): FileContent {
  return async (handle, take) => {
    const chunks = (file.chunks ?? []).map(([sha256, size]) => ({ sha256, size, key: keyFor(location, chunkName(sha256)), where: `chunk ${formatLocation(location)}${chunkName(sha256)}` }));
    const ahead: Promise<Buffer[]>[] = [];
    const writes: Promise<void>[] = [];
    let next = 0;
    const fill = () => {
      while (next < chunks.length && ahead.length < CHUNKS_AHEAD) {
        const chunk = chunks[next++]!;
        const fetching = fetchChunk(store, chunk.where, chunk.key, chunk.size);
        // Awaited in order below; one left behind when the file fails must not go unhandled.
        fetching.catch(() => undefined);
        ahead.push(fetching);
      }
    };
    const written = async (chunk: (typeof chunks)[number], offset: number, reply: Promise<ChunkWritten>) => {
      const result = await reply;
      if (result.type === 'corrupted') throw new PreemptdError('ERR_RESTORE', `${chunk.where} has SHA-256 ${result.got}: corrupted`);
      if (result.type === 'failed') throw new PreemptdError('ERR_RESTORE', `${chunk.where} not written at byte ${offset} of the file: ${result.message}`);
    };
    let offset = 0;
    try {
      fill();
      for (let index = 0; ahead.length > 0; index += 1) {
        const pieces = await ahead.shift()!;
        fill();
        for (const piece of pieces) {
          const failure = take(piece);
          if (failure) return failure;
        }
        if (writes.length >= WRITES_AHEAD) {
          writers.flush();
          await writes.shift();
        }
        const chunk = chunks[index]!;
        const writing = written(chunk, offset, writers.write(handle.fd, offset, pieces, chunk.size, chunk.sha256));
        writing.catch(() => undefined);
        writes.push(writing);
        offset += chunk.size;
      }
      writers.flush();
      await Promise.all(writes);
      return undefined;
    } finally {
      writers.flush();
      await Promise.allSettled(writes);
    }
  };
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
