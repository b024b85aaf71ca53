import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32 } from '@node-rs/crc32';
// './checksum.ts' as written: under the test runner Node runs this thread from source (it strips
// types and keeps import paths), tsc rewrites the path to .js, and the bundler follows it.
import { crc32Combine, runningChecksum, type RunningChecksum } from './checksum.ts';
import { ContentChunker, SNAPSHOT_CHUNK_SIZES } from './chunker.ts';
import type { ChecksumAlgorithm } from './options.js';

/**
 * A reading thread (see read.ts): opens files, reads each once in parts of `partSize`,
 * computes the file's checksum and each part's CRC32, and reads each part into shared memory
 * the main thread sends from (no copy). For dedup mode it also cuts the file into
 * content-defined chunks and hashes each, so that work runs beside the uploads, on as many
 * threads as files are read at once. Blocking reads are fine: this thread does nothing else.
 */
export type ReadRequest =
  /**
   * `dev`/`ino`: the file as walked; a path now naming another file is refused. `chunks`:
   * cut into SNAPSHOT_CHUNK_SIZES chunks and hash them.
   */
  | { type: 'open'; id: number; path: string; dev: number; ino: number; padToSize: boolean; partSize: number; checksum: ChecksumAlgorithm; chunks: boolean }
  /** `into`: a buffer the main thread is done with, to read into again; without it, a new one. */
  | { type: 'read'; id: number; into: SharedArrayBuffer | undefined }
  | { type: 'finish'; id: number }
  | { type: 'close'; id: number }
  /**
   * `length` bytes at `offset` of the file as walked (`dev`, `ino`) and still of `size` and
   * `mtimeMs`, with their SHA-256: a chunk owed since the file was scanned (sync/owed.ts).
   */
  | { type: 'range'; id: number; path: string; dev: number; ino: number; size: number; mtimeMs: number; offset: number; length: number }
  /** The SHA-256 of each of the back-to-back pieces of `sizes` at `offset` of `memory`: chunks a restore fetched. */
  | { type: 'hash'; id: number; memory: SharedArrayBuffer; offset: number; sizes: number[] };

/**
 * A chunk as cut: its SHA-256 (hex) and size, as a dedup manifest lists it, and its CRC32,
 * which the pack it goes into joins into its own (crc32Combine).
 */
export type CutRef = [sha256: string, size: number, crc32: number];

/**
 * `chunks` (files opened with `chunks`): the chunks completed by this part, in order; the first
 * ones may lie partly or wholly in earlier parts (the bytes the chunker held). Those `end` lists
 * are the file's last ones, all begun earlier.
 */
export type ReadReply =
  | { type: 'opened'; id: number; size: number; mtimeMs: number }
  /** The next part: `length` bytes of `part`, whose CRC32 is `crc32`. */
  | { type: 'part'; id: number; part: SharedArrayBuffer; length: number; crc32: number; chunks?: CutRef[] }
  | { type: 'end'; id: number; chunks?: CutRef[] }
  /** `part`: transferred, not shared (see readRange). */
  | { type: 'range'; id: number; part: ArrayBuffer; sha256: string; crc32: number }
  | { type: 'hashed'; id: number; sha256: string[] }
  | { type: 'finished'; id: number; checksum: string; bytesRead: number; after: { size: number; mtimeMs: number } | null }
  | { type: 'error'; id: number; code: string | undefined; message: string };

interface OpenFile {
  fd: number;
  path: string;
  size: number;
  padToSize: boolean;
  partSize: number;
  /** Bytes handed out, padding included. */
  emitted: number;
  /** Bytes actually read from the file. */
  bytesRead: number;
  checksum: RunningChecksum;
  cutting: Cutting | undefined;
}

/** A file being cut into chunks: the chunker, and how many bytes of earlier parts it holds (in no chunk yet). */
interface Cutting {
  chunker: ContentChunker;
  heldLength: number;
}

/** Started by FileReader.start({ nice }): the sync reads at low CPU priority. */
export interface ReadWorkerData {
  nice?: number;
}

const { nice } = (workerData ?? {}) as ReadWorkerData;
if (nice !== undefined) {
  // On Linux setpriority(PRIO_PROCESS, 0) changes the calling thread only: this one, not the
  // agent's main thread. Where the platform refuses, the thread reads at normal priority.
  try {
    setPriority(nice);
  } catch {
    // Not supported on this platform: the thread keeps the normal priority.
  }
}

const files = new Map<number, OpenFile>();
const reply = (message: ReadReply, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(message, transfer);

const sha256Of = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * Cuts a part and returns its CRC32 and the chunks it completes. The CRC32 pass goes piece
 * by piece (a piece: a chunk's bytes in this part, and the part's end no chunk has taken
 * yet), so each chunk comes with its CRC32 too: the main thread joins a pack's from its
 * chunks' instead of reading the pack again (0.08 CPU-s per GB stored). Bytes held from
 * earlier parts are read again for the chunks they are in: under maxSize per part.
 */
function cutPart(cutting: Cutting, bytes: Uint8Array): { crc32: number; chunks: CutRef[] } {
  const chunks: CutRef[] = [];
  let partCrc32 = 0;
  let taken = 0;
  cutting.chunker.push(bytes, (chunk) => {
    const fromEarlier = Math.min(cutting.heldLength, chunk.length);
    cutting.heldLength -= fromEarlier;
    const piece = chunk.subarray(fromEarlier);
    const pieceCrc32 = crc32(piece);
    partCrc32 = crc32Combine(partCrc32, pieceCrc32, piece.length);
    taken += piece.length;
    const chunkCrc32 = fromEarlier > 0 ? crc32Combine(crc32(chunk.subarray(0, fromEarlier)), pieceCrc32, piece.length) : pieceCrc32;
    chunks.push([sha256Of(chunk), chunk.length, chunkCrc32]);
  });
  const rest = bytes.subarray(taken);
  cutting.heldLength += rest.length;
  return { crc32: crc32Combine(partCrc32, crc32(rest), rest.length), chunks };
}

/** The file's last chunks: what the chunker held, a few, each read for its CRC32. */
function lastChunks(cutting: Cutting): CutRef[] {
  const chunks: CutRef[] = [];
  cutting.chunker.end((chunk) => chunks.push([sha256Of(chunk), chunk.length, crc32(chunk)]));
  cutting.heldLength = 0;
  return chunks;
}

function replyEnd(id: number, file: OpenFile): void {
  reply({ type: 'end', id, ...(file.cutting ? { chunks: lastChunks(file.cutting) } : {}) });
}

/**
 * Opens the walked file itself, never what took its place: O_NOFOLLOW refuses a link
 * (ELOOP), O_NONBLOCK keeps a FIFO from blocking this thread for good (a FIFO without a
 * writer would), and fstat checks it is a regular file with the walked device and inode
 * (and, for a range, the size and mtime it had when scanned).
 */
function openWalked(request: { path: string; dev: number; ino: number; size?: number; mtimeMs?: number }): { fd: number; info: Stats } {
  const fd = openSync(request.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  const info = fstatSync(fd);
  let refusal: string | undefined;
  if (!info.isFile()) refusal = 'no longer a regular file (a FIFO, device or directory took its place): not read';
  else if (info.dev !== request.dev || info.ino !== request.ino) refusal = 'replaced by another file after it was found: not read';
  else if ((request.size !== undefined && info.size !== request.size) || (request.mtimeMs !== undefined && info.mtimeMs !== request.mtimeMs)) refusal = 'changed since it was scanned: not read';
  if (refusal === undefined) return { fd, info };
  closeSync(fd);
  // Errno-like, so describeRead (upload.ts) can tell it apart and show the message.
  throw Object.assign(new Error(refusal), { code: 'EREPLACED' });
}

/** Reads `length` bytes at `offset` into memory moved to the main thread, or fails: a range past the end means the file changed. */
function readRange(request: Extract<ReadRequest, { type: 'range' }>): void {
  const { fd } = openWalked(request);
  try {
    // Moved to the main thread rather than shared: it is copied into a pack there, and V8 copies
    // out of shared memory byte by byte unless both ends are equally aligned (0.21 against
    // 0.02 CPU-s per GB into a pack's unaligned offsets).
    const part = new ArrayBuffer(request.length);
    const bytes = Buffer.from(part);
    for (let read = 0; read < request.length; ) {
      const got = readSync(fd, bytes, read, request.length - read, request.offset + read);
      if (got === 0) throw Object.assign(new Error('shrank since it was scanned: not read'), { code: 'EREPLACED' });
      read += got;
    }
    reply({ type: 'range', id: request.id, part, sha256: sha256Of(bytes), crc32: crc32(bytes) }, [part]);
  } finally {
    closeSync(fd);
  }
}

function handle(request: ReadRequest): void {
  if (request.type === 'hash') {
    let at = request.offset;
    const sha256 = request.sizes.map((size) => sha256Of(new Uint8Array(request.memory, (at += size) - size, size)));
    reply({ type: 'hashed', id: request.id, sha256 });
    return;
  }
  if (request.type === 'range') {
    readRange(request);
    return;
  }
  if (request.type === 'open') {
    const { fd, info } = openWalked(request);
    files.set(request.id, {
      fd,
      path: request.path,
      size: info.size,
      padToSize: request.padToSize,
      partSize: request.partSize,
      emitted: 0,
      bytesRead: 0,
      checksum: runningChecksum(request.checksum),
      cutting: request.chunks ? { chunker: new ContentChunker(SNAPSHOT_CHUNK_SIZES), heldLength: 0 } : undefined,
    });
    reply({ type: 'opened', id: request.id, size: info.size, mtimeMs: info.mtimeMs });
    return;
  }
  const file = files.get(request.id);
  if (!file) {
    if (request.type !== 'close') reply({ type: 'error', id: request.id, code: undefined, message: 'file is not open' });
    return;
  }
  if (request.type === 'read') {
    const wanted = Math.min(file.partSize, file.size - file.emitted);
    if (wanted === 0) {
      replyEnd(request.id, file);
      return;
    }
    const shared = request.into && request.into.byteLength >= wanted ? request.into : new SharedArrayBuffer(file.partSize);
    const part = Buffer.from(shared);
    let read = 0;
    for (;;) {
      const got = read < wanted ? readSync(file.fd, part, read, wanted - read, file.emitted + read) : 0;
      if (got === 0) break;
      read += got;
    }
    // EOF before `size`: the file shrank. A tar entry must still be `size` long: pad with zeros.
    if (file.padToSize) part.fill(0, read, wanted);
    const length = file.padToSize ? wanted : read;
    if (length === 0) {
      replyEnd(request.id, file);
      return;
    }
    file.bytesRead += read;
    file.emitted += length;
    const bytes = part.subarray(0, length);
    const cut = file.cutting ? cutPart(file.cutting, bytes) : { crc32: crc32(bytes), chunks: undefined };
    file.checksum.update(bytes, cut.crc32);
    reply({ type: 'part', id: request.id, part: shared, length, crc32: cut.crc32, ...(cut.chunks ? { chunks: cut.chunks } : {}) });
    return;
  }
  closeSync(file.fd);
  files.delete(request.id);
  if (request.type === 'finish') {
    let after: { size: number; mtimeMs: number } | null = null;
    try {
      const info = statSync(file.path);
      after = { size: info.size, mtimeMs: info.mtimeMs };
    } catch {
      after = null;
    }
    reply({ type: 'finished', id: request.id, checksum: file.checksum.digest(), bytesRead: file.bytesRead, after });
  }
}

parentPort?.on('message', (request: ReadRequest) => {
  try {
    handle(request);
  } catch (error) {
    const failed = files.get(request.id);
    if (failed) {
      files.delete(request.id);
      try {
        closeSync(failed.fd);
      } catch {
        // Already failing: the read error is the one worth reporting.
      }
    }
    reply({ type: 'error', id: request.id, code: (error as NodeJS.ErrnoException).code, message: (error as Error).message });
  }
});
