import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Part } from '../stores/parts.js';
import type { ChecksumAlgorithm } from './options.js';
import type { CutRef, ReadReply, ReadRequest, ReadWorkerData } from './read-worker.js';
import type { FoundFile } from './walk.js';

/** What was actually stored for a file. */
export interface ReadResult {
  size: number;
  mtimeMs: number;
  /** In the algorithm `open` was given. */
  checksum: string;
  /** Set when the file changed between the scan and the end of reading; says how. */
  changed?: string;
}

export type { CutRef };

/**
 * A part of a file opened with `chunks`: also the chunks it completes, in order (the first ones
 * may lie partly or wholly in earlier parts). After the last part comes one of no bytes with
 * the file's last chunks, if any were still open.
 */
export interface ReadPart extends Part {
  chunks?: CutRef[];
}

export interface FileRead {
  /**
   * The file's bytes in parts of `partSize` (the last may be shorter), each with its CRC32.
   * Iterate once; leaving early (`break`, `return`) closes the file. The next part is read
   * while the caller works on this one.
   */
  parts: AsyncIterable<ReadPart>;
  /** Bytes `parts` will yield. */
  size: number;
  /** Call after `parts` was read to the end. */
  result(): Promise<ReadResult>;
}

type Listener = (reply: ReadReply) => void;

/** One reading thread and the files open on it. */
class ReadThread {
  readonly listeners = new Map<number, Listener>();
  failure: Error | undefined;

  constructor(readonly worker: Worker) {
    worker.on('message', (message: ReadReply) => this.listeners.get(message.id)?.(message));
    // A thread that dies fails the files open on it, each with this message; none waits on it.
    const stop = (error?: Error) => {
      this.failure ??= error ?? new Error('the file reading thread stopped');
      for (const [id, listener] of this.listeners) listener({ type: 'error', id, code: undefined, message: this.failure.message });
      this.listeners.clear();
    };
    worker.on('error', stop);
    worker.on('exit', () => stop());
  }
}

/**
 * Threads for dedup mode, where each reading thread also cuts and hashes its files' chunks
 * (about 0.5 GB/s a thread here): one file's chunks are cut in order on one thread, so files
 * spread over threads, no more of them than files read at once or cores.
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

  private constructor(private readonly threads: ReadThread[]) {}

  /** `threads` reading threads (dedup mode cuts chunks on them); `nice`: their CPU priority (19 lowest), for reads that must not slow the workload. */
  static start({ threads = 1, ...data }: ReadWorkerData & { threads?: number } = {}): FileReader {
    // read-worker.ts under the test runner (Node strips its types), read-worker.js once built.
    const worker = new URL(`./read-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    // No inherited flags: `--input-type` and the like make no sense for a module file.
    return new FileReader(Array.from({ length: threads }, () => new ReadThread(new Worker(worker, { execArgv: [], workerData: data }))));
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
      throw readError(opened);
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
        const notes: string[] = [];
        if (opened.size !== file.size || opened.mtimeMs !== file.mtimeMs) notes.push(`changed after it was found (${file.size} bytes then, ${opened.size} when opened)`);
        if (done.bytesRead !== opened.size) notes.push(`shrank to ${done.bytesRead} bytes while being read${options.exactSize ? ' (padded with zeros)' : ''}`);
        if (!done.after) notes.push('removed while being read');
        else if (done.after.size !== opened.size || done.after.mtimeMs !== opened.mtimeMs) notes.push(`written to while being read (now ${done.after.size} bytes); stored as of opening`);
        return {
          size: options.exactSize ? opened.size : done.bytesRead,
          mtimeMs: opened.mtimeMs,
          checksum: done.checksum,
          ...(notes.length ? { changed: notes.join('; ') } : {}),
        };
      },
    };
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

/** Shaped like the node:fs error it reports (errno `code`), not coded: callers test the errno. */
function readError(message: ReadReply): Error {
  const text = message.type === 'error' ? message.message : `unexpected reply ${message.type}`;
  return Object.assign(new Error(text), { code: message.type === 'error' ? message.code : undefined });
}
