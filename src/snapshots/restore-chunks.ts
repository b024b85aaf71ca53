import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import { formatLocation, keyFor, type StoreLocation } from '../stores/location.js';
import { readInto } from '../stores/read-into.js';
import type { ObjectStore, ReadInto } from '../stores/types.js';
import { runningChecksum } from './checksum.js';
import type { ManifestFile, StoredChunk } from './manifest.js';
import type { ChecksumAlgorithm } from './options.js';
import { chunkHome } from './repository.js';
import type { RequestBuffers } from './restore-buffers.js';
import { chunkRequests, requestBytes, type ChunkRequest } from './restore-requests.js';
import { insideTarget } from './restore-entries.js';

/** Requests of one file in flight ahead of the one being written (the store's keep-alive pool is sized for it). */
export const REQUESTS_AHEAD = 8;

/**
 * Bytes of one file fetched ahead of the writer, at most (a request larger alone is fetched
 * alone): with a restore's 4 files at once, 128 MiB ahead plus the request each is writing
 * (16 MiB at most), whatever the packs' layout.
 */
export const BYTES_AHEAD = 32 * 1024 * 1024;

/** How an error names a chunk: its pack and byte range, or its own object. */
function chunkWhere(location: StoreLocation, chunk: StoredChunk): string {
  const name = `${formatLocation(location)}${chunkHome(chunk)}`;
  return chunk.length === 4 ? `chunk ${chunk[0]} (bytes ${chunk[3]}+${chunk[1]} of ${name})` : `chunk ${name}`;
}

/**
 * Fetches one request (a range of a pack, or a chunk stored alone) into one buffer and checks
 * each chunk in it is what its name says: exactly its size (never more read than the request
 * plus one byte) with its SHA-256. Anything else names the chunk, with its pack and byte range.
 */
async function fetchRequest(store: ObjectStore, location: StoreLocation, request: ChunkRequest, { buffers, sha256s }: ChunkReading): Promise<Buffer> {
  const bytes = requestBytes(request);
  const into = buffers?.take(bytes) ?? Buffer.allocUnsafe(bytes);
  let got: ReadInto;
  try {
    got = await readInto(store, keyFor(location, request.home), request.range, into);
  } catch (error) {
    buffers?.release(into);
    throw new PreemptdError('ERR_RESTORE', `cannot read ${chunkWhere(location, request.chunks[0]!)}: ${errorMessage(error)}`, { cause: error });
  }
  const failure = await checkChunks(location, request.chunks, into, got, sha256s && into.buffer instanceof SharedArrayBuffer ? sha256s : sha256sHere);
  if (failure) {
    buffers?.release(into);
    throw failure;
  }
  return into;
}

/** Where a restore's chunks are read into and hashed. */
export interface ChunkReading {
  /** Without it, each request is read into new memory, which the reader may keep. */
  buffers?: RequestBuffers | undefined;
  /**
   * The SHA-256 of each of the back-to-back pieces of `sizes` at the start of `bytes`, for
   * requests read into shared memory (`buffers`' pooled ones), elsewhere; the others are hashed on this thread.
   */
  sha256s?: ((bytes: Buffer, sizes: number[]) => Promise<string[]>) | undefined;
}

async function sha256sHere(bytes: Buffer, sizes: number[]): Promise<string[]> {
  let at = 0;
  return sizes.map((size) => createHash('sha256').update(bytes.subarray(at, (at += size))).digest('hex'));
}

/** The first of `chunks` that `got` of `bytes` does not hold as named, as an error; undefined when all are. */
async function checkChunks(location: StoreLocation, chunks: readonly StoredChunk[], bytes: Buffer, got: ReadInto, sha256s: NonNullable<ChunkReading['sha256s']>): Promise<PreemptdError | undefined> {
  // The chunks `got` holds whole are hashed; the first one it cuts short is named below.
  const sizes: number[] = [];
  for (let end = 0; sizes.length < chunks.length && (end += chunks[sizes.length]![1]) <= got.length; ) sizes.push(chunks[sizes.length]![1]);
  const digests = await sha256s(bytes, sizes);
  let offset = 0;
  for (const [index, chunk] of chunks.entries()) {
    const size = chunk[1];
    if (got.length < offset + size) return new PreemptdError('ERR_RESTORE', `${chunkWhere(location, chunk)} is ${Math.max(0, got.length - offset)} bytes, the manifest says ${size}`);
    if (digests[index] !== chunk[0]) return new PreemptdError('ERR_RESTORE', `${chunkWhere(location, chunk)} has SHA-256 ${digests[index]}: corrupted`);
    offset += size;
  }
  const last = chunks.at(-1)!;
  return got.more ? new PreemptdError('ERR_RESTORE', `${chunkWhere(location, last)} is larger than the manifest's ${last[1]} bytes`) : undefined;
}

/**
 * A dedup file's bytes: its chunks in order, each verified, fetched by requests that read
 * the chunks it has back to back in a pack at once (restore-requests.ts); up to
 * REQUESTS_AHEAD of them, and BYTES_AHEAD, fetched in parallel ahead of the writer. A bad
 * chunk ends the stream with its error. Each piece is one request's bytes; with `buffers`, a
 * piece of its `pooledBytes` or more is lent: it goes back to the pool when the next piece
 * is asked for, so the reader must be done with it by then.
 */
export async function* chunkedBody(store: ObjectStore, location: StoreLocation, file: ManifestFile, reading: ChunkReading = {}): AsyncGenerator<Buffer> {
  const { buffers } = reading;
  const requests = chunkRequests(file.chunks ?? []);
  const ahead: { bytes: number; fetching: Promise<Buffer> }[] = [];
  let bytesAhead = 0;
  let next = 0;
  const fill = () => {
    while (next < requests.length && ahead.length < REQUESTS_AHEAD) {
      const bytes = requestBytes(requests[next]!);
      if (ahead.length > 0 && bytesAhead + bytes > BYTES_AHEAD) return;
      const fetching = fetchRequest(store, location, requests[next++]!, reading);
      // Awaited in order below; one left behind when the writer stops must not go unhandled.
      fetching.catch(() => undefined);
      ahead.push({ bytes, fetching });
      bytesAhead += bytes;
    }
  };
  fill();
  while (ahead.length > 0) {
    const { bytes, fetching } = ahead[0]!;
    const piece = await fetching;
    ahead.shift();
    bytesAhead -= bytes;
    fill();
    yield piece;
    buffers?.release(piece);
  }
}

/** Bytes of a file in place read at once to check it: one buffer a file, reused for each read. */
const PRESENT_READ_BYTES = 1024 * 1024;

/**
 * Whether the file is already in place with the manifest's content (a warm restore): a
 * regular file reached through no link, of the manifest's size and checksum. It is opened
 * itself (O_NOFOLLOW, and the inode looked at) so a link or FIFO put in its place after the
 * look is never read or taken for it, and read into one buffer: a stream's buffer per read
 * cost the garbage collector 0.3 s of a 1.9 GB warm restore. Read, never written.
 */
export async function alreadyPresent(target: string, file: ManifestFile, checksum: ChecksumAlgorithm): Promise<boolean> {
  const path = insideTarget(target, file.path);
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isFile() || info.size !== file.size) return false;
  if ((await realpath(path)) !== path) return false;
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (!handle) return false;
  try {
    const opened = await handle.stat();
    if (!opened.isFile() || opened.dev !== info.dev || opened.ino !== info.ino) return false;
    const running = runningChecksum(checksum);
    const buffer = Buffer.allocUnsafe(Math.min(PRESENT_READ_BYTES, file.size + 1));
    let bytes = 0;
    for (let bytesRead = -1; bytesRead !== 0 && bytes <= file.size; bytes += bytesRead) {
      ({ bytesRead } = await handle.read(buffer, 0, buffer.length, null));
      running.update(buffer.subarray(0, bytesRead));
    }
    return bytes === file.size && running.digest() === file[checksum];
  } finally {
    await handle.close();
  }
}
