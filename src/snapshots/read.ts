import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { readResult, type FileRead, type ReadPart } from './file-read.js';
import type { ChecksumAlgorithm } from './options.js';
import { readError, ReadThread } from './read-thread.js';
import type { ReadReply, ReadRequest, ReadWorkerData } from './read-worker.js';
import { segmentCapacity, segmentedRead, type Segment, type SegmentRequest } from './segmented-read.js';
import type { FoundFile } from './walk.js';

export type { CutRef } from './cut-chunks.js';
export type { FileRead, ReadPart, ReadResult } from './file-read.js';

/**
 * A segment a reading thread cuts at a time. Its overlap (2 MiB) is read and cut twice; one
 * file of 1 GiB on two threads measured 1.59-1.90x the whole read with 16 MiB segments and
 * 1.81-1.97x with 32 MiB, which hold twice the memory (a segmented file holds up to five
 * segments: four read ahead and the one being taken apart), so 16.
 */
const SEGMENT_BYTES = 16 * 1024 * 1024;
/** Segments of one file read at once, whatever the threads: each holds SEGMENT_BYTES and more. */
const MAX_SEGMENTS_AHEAD = 4;

/**
 * Threads for dedup mode, where each reading thread also cuts and hashes its files' chunks
 * (about 1 GB/s a thread here): files spread over threads, and a large file's segments too
 * (segmented-read.ts), no more of them than files read at once or cores.
 */
export function chunkingThreads(concurrency: number): number {
  return Math.max(1, Math.min(concurrency, availableParallelism()));
}

/**
 * Reads files on threads of their own, which also compute their checksum (checksum.ts) and
 * the CRC32 of each upload part. Profiled on the 2 GiB bench, a SHA-256 took 21 % of the
 * thread driving the uploads and the SDK's part CRC32 13 %; on their own thread they run
 * beside it on the other core (see docs/snapshot.md for the rates this bought). Each file is
 * read on the live thread with the fewest files open.
 * Parts are read into shared memory: nothing is copied between threads.
 */
export class FileReader {
  private nextId = 0;
  /** Bytes read from files so far (parts and ranges). */
  bytesRead = 0;
  /**
   * Part buffers released by their users, read into again: 4.6-5.1 GB/s here against 2.2 GB/s
   * into new memory (the kernel maps fresh pages on first touch), and no garbage. Against
   * transferring each part's buffer to this thread and back, it took the agent from 2.15 to
   * 1.81-1.84 CPU-s/GB on the 2 GiB bench (postMessage and GC had 17 % of this thread).
   * Never more of them than parts were in flight at once.
   */
  private readonly free: SharedArrayBuffer[] = [];

  /** Segment buffers given back, as `free` is for parts. */
  private readonly freeSegments: SharedArrayBuffer[] = [];
  /** Files opened and not yet read to their end or left. */
  private filesOpen = 0;

  private constructor(
    private readonly threads: ReadThread[],
    private readonly segmentBytes: number,
  ) {}

  /**
   * `threads` reading threads (dedup mode cuts chunks on them); `nice`: their CPU priority (19
   * lowest), for reads that must not slow the workload. `segmentBytes`: with two threads or
   * more, a file of twice this or more is cut on all of them at once (segmented-read.ts).
   */
  static start({ threads = 1, segmentBytes = SEGMENT_BYTES, ...data }: ReadWorkerData & { threads?: number; segmentBytes?: number } = {}): FileReader {
    // read-worker.ts under the test runner (Node strips its types), read-worker.js once built.
    const worker = new URL(`./read-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    // No inherited flags: `--input-type` and the like make no sense for a module file.
    return new FileReader(
      Array.from({ length: threads }, () => new ReadThread(new Worker(worker, { execArgv: [], workerData: data }))),
      segmentBytes,
    );
  }

  private pickThread(): ReadThread {
    const live = this.threads.filter((thread) => !thread.failure);
    return live.reduce((best, thread) => (thread.listeners.size < best.listeners.size ? thread : best), live[0] ?? this.threads[0]!);
  }

  /**
   * Opens a file to be stored once, as it is at this moment: its size when opened bounds the
   * read, so a file still being written cannot keep the upload going. `exactSize` (tar
   * entries, whose header carries the size) pads a file that shrank while being read with
   * zeros; the manifest then says it changed. `chunks`: the parts also carry the file's
   * content-defined chunks (ReadPart).
   */
  async open(file: FoundFile, options: { exactSize: boolean; partSize: number; checksum: ChecksumAlgorithm; chunks?: boolean }): Promise<FileRead> {
    this.filesOpen += 1;
    let open = true;
    const closed = () => {
      if (open) this.filesOpen -= 1;
      open = false;
    };
    const id = this.nextId++;
    const thread = this.pickThread();
    const replies: ReadReply[] = [];
    let wake: (() => void) | undefined;
    thread.listeners.set(id, (message) => {
      replies.push(message);
      wake?.();
    });
    // One request of this file in flight at a time: replies come back in order.
    const next = async (request: ReadRequest): Promise<ReadReply> => {
      if (thread.failure) return { type: 'error', id, code: undefined, message: thread.failure.message };
      thread.worker.postMessage(request);
      while (replies.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return replies.shift()!;
    };
    const opened = await next({
      type: 'open',
      id,
      path: file.source,
      dev: file.dev,
      ino: file.ino,
      padToSize: options.exactSize,
      partSize: options.partSize,
      checksum: options.checksum,
      chunks: options.chunks ?? false,
    });
    if (opened.type !== 'opened') {
      thread.listeners.delete(id);
      closed();
      throw readError(opened);
    }
    const threads = this.threads.length;
    // With as many files open as threads, every thread has a file to read already.
    if (options.chunks && options.checksum === 'crc32' && !options.exactSize && threads > 1 && this.filesOpen <= threads && opened.size >= 2 * this.segmentBytes) {
      // The segments open the file again, each checked against the walk as this open was.
      thread.listeners.delete(id);
      thread.worker.postMessage({ type: 'close', id } satisfies ReadRequest);
      // The threads shared among the files open, and one more to keep each thread's queue fed.
      const ahead = () => Math.max(1, Math.min(MAX_SEGMENTS_AHEAD, Math.ceil((threads + 1) / this.filesOpen)));
      return segmentedRead(file, opened, { segmentBytes: this.segmentBytes, ahead, read: (request) => this.readSegment(file, request), closed });
    }
    const reader = this;
    async function* parts(): AsyncGenerator<ReadPart> {
      let ended = false;
      const read = async () => {
        const into = reader.free.pop();
        const message = await next({ type: 'read', id, into });
        if (message.type !== 'part' && into) reader.free.push(into);
        return message;
      };
      let pending = read();
      try {
        for (;;) {
          const message = await pending;
          if (message.type === 'end') {
            if (message.chunks?.length) yield { bytes: Buffer.alloc(0), crc32: 0, chunks: message.chunks };
            ended = true;
            return;
          }
          if (message.type !== 'part') throw readError(message);
          pending = read();
          reader.bytesRead += message.length;
          const chunks = message.chunks ? { chunks: message.chunks } : {};
          yield { bytes: Buffer.from(message.part, 0, message.length), crc32: message.crc32, release: () => reader.free.push(message.part), ...chunks };
        }
      } finally {
        closed();
        // Cut short: close the file now (the read still in flight is answered and dropped).
        if (!ended) {
          thread.listeners.delete(id);
          if (!thread.failure) thread.worker.postMessage({ type: 'close', id } satisfies ReadRequest);
        }
      }
    }

    return {
      parts: parts(),
      size: opened.size,
      result: async () => {
        const done = await next({ type: 'finish', id });
        thread.listeners.delete(id);
        if (done.type !== 'finished') throw readError(done);
        return readResult(file, opened, { ...done, exactSize: options.exactSize });
      },
    };
  }

  /** Reads and cuts a segment of `file` on the thread with the least to do, into a segment buffer given back by its release. */
  private async readSegment(file: FoundFile, request: SegmentRequest): Promise<Segment> {
    const into = this.freeSegments.pop() ?? new SharedArrayBuffer(segmentCapacity(this.segmentBytes));
    const message = await this.ask('segment', (id) => ({ type: 'segment', id, path: file.source, dev: file.dev, ino: file.ino, ...request, into })).catch((error: unknown) => {
      this.freeSegments.push(into);
      throw error;
    });
    this.bytesRead += request.readEnd - request.start;
    let released = false;
    const release = () => {
      if (!released) this.freeSegments.push(message.part);
      released = true;
    };
    return { ...request, part: message.part, cuts: message.cuts, release };
  }

  /**
   * `length` bytes at `offset` of `file` with their SHA-256 and CRC32, read on a reading thread opened
   * as `open` does (no link followed, the walked device and inode) and refused (EREPLACED)
   * unless the file still has the size and mtime it had. One range in memory per call.
   */
  async readRange(file: FoundFile, offset: number, length: number): Promise<{ bytes: Buffer; sha256: string; crc32: number }> {
    const message = await this.ask('range', (id) => ({ type: 'range', id, path: file.source, dev: file.dev, ino: file.ino, size: file.size, mtimeMs: file.mtimeMs, offset, length }));
    this.bytesRead += length;
    return { bytes: Buffer.from(message.part), sha256: message.sha256, crc32: message.crc32 };
  }

  /**
   * The SHA-256 (hex) of each of the back-to-back pieces of `sizes` at the start of `bytes`,
   * which must be shared memory, computed on a reading thread: restore checks the chunks it
   * fetched there, beside the main thread's socket reads and writes.
   */
  async sha256s(bytes: Buffer, sizes: number[]): Promise<string[]> {
    const message = await this.ask('hashed', (id) => ({ type: 'hash', id, memory: bytes.buffer as SharedArrayBuffer, offset: bytes.byteOffset, sizes }));
    return message.sha256;
  }

  /** Sends `request` (numbered `id`) to the live thread with the fewest files open, and waits for its one reply, which must be of `type`. */
  private async ask<T extends ReadReply['type']>(type: T, request: (id: number) => ReadRequest): Promise<Extract<ReadReply, { type: T }>> {
    const id = this.nextId++;
    const thread = this.pickThread();
    if (thread.failure) throw thread.failure;
    const reply = new Promise<ReadReply>((resolve) => thread.listeners.set(id, resolve));
    thread.worker.postMessage(request(id));
    const message = await reply;
    thread.listeners.delete(id);
    if (message.type !== type) throw readError(message);
    return message as Extract<ReadReply, { type: T }>;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }
}
