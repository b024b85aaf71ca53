import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32 } from '@node-rs/crc32';
// './checksum.ts' as written: under the test runner Node runs this thread from source (it strips
// types and keeps import paths), tsc rewrites the path to .js, and the bundler follows it.
import { runningChecksum, type RunningChecksum } from './checksum.ts';
import { cutPart, cutSegment, lastChunks, sha256Of, startCutting, type CutRef, type Cutting, type SegmentCut } from './cut-chunks.ts';
import { pathAfterRead, type PathAfterRead } from './file-read.ts';
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
  | { type: 'hash'; id: number; memory: SharedArrayBuffer; offset: number; sizes: number[] }
  /**
   * Bytes `start` to `readEnd` of the file as walked (`dev`, `ino`), cut as cut-chunks.ts's
   * cutSegment says, into `into` when it is large enough: one segment of a large file that
   * several threads cut at once (segmented-read.ts).
   */
  | { type: 'segment'; id: number; path: string; dev: number; ino: number; start: number; hashUpTo: number; readEnd: number; skipFirst: boolean; last: boolean; into: SharedArrayBuffer | undefined };

export type { CutRef, SegmentCut };

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
  /** The segment's bytes, at the start of `part`, and its chunks' ends. */
  | { type: 'segment'; id: number; part: SharedArrayBuffer; cuts: SegmentCut[] }
  | { type: 'finished'; id: number; checksum: string; bytesRead: number; after: PathAfterRead | null }
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

/** Fills `bytes` from `offset` of the file, or fails: the file ended first, so it shrank since `when`. */
function readExactly(fd: number, bytes: Buffer, offset: number, when: string): void {
  for (let read = 0; read < bytes.length; ) {
    const got = readSync(fd, bytes, read, bytes.length - read, offset + read);
    if (got === 0) throw Object.assign(new Error(`shrank ${when}: not read`), { code: 'EREPLACED' });
    read += got;
  }
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
    readExactly(fd, bytes, request.offset, 'since it was scanned');
    reply({ type: 'range', id: request.id, part, sha256: sha256Of(bytes), crc32: crc32(bytes) }, [part]);
  } finally {
    closeSync(fd);
  }
}

function readSegment(request: Extract<ReadRequest, { type: 'segment' }>): void {
  const { fd } = openWalked(request);
  try {
    const length = request.readEnd - request.start;
    const part = request.into && request.into.byteLength >= length ? request.into : new SharedArrayBuffer(length);
    const bytes = Buffer.from(part, 0, length);
    readExactly(fd, bytes, request.start, 'while being read');
    reply({ type: 'segment', id: request.id, part, cuts: cutSegment(bytes, request.start, request.hashUpTo, request.skipFirst, request.last) });
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
  if (request.type === 'segment') {
    readSegment(request);
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
      cutting: request.chunks ? startCutting() : undefined,
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
    // lstat: a link now at the path is a replacement, not the file it points to.
    let after: PathAfterRead | null = null;
    try {
      after = pathAfterRead(lstatSync(file.path));
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
