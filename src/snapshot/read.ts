import { extname } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ReadReply, ReadRequest } from './read-worker.js';
import type { FoundFile } from './walk.js';

/** What was actually stored for a file. */
export interface ReadResult {
  size: number;
  mtimeMs: number;
  sha256: string;
  /** Set when the file changed between the scan and the end of reading; says how. */
  changed?: string;
}

export interface FileRead {
  /** The file's bytes. Read it once, to the end (or destroy it). */
  body: Readable;
  /** Bytes `body` will yield. */
  size: number;
  /** Call after `body` was consumed to the end. */
  result(): Promise<ReadResult>;
  /** CRC32 (base64) of `partSize` part `number` (1-based) of `body`, once it has been read. */
  partCrc32(number: number): Promise<string>;
}

/**
 * 4 MiB chunks: a quarter of the messages, allocations and stream hops of 1 MiB chunks for
 * the same bytes (64x fewer than Node's 64 KiB stream default).
 */
const CHUNK_SIZE = 4 << 20;

type Listener = (reply: ReadReply) => void;

/**
 * Reads files on a second thread, which also computes their SHA-256 (docs/snapshot.md says
 * why SHA-256) and the CRC32 of each upload part. Profiled on the 2 GiB bench, the hash took
 * 21 % of the thread driving the uploads, the SDK's part CRC32 13 %; on their own thread they
 * run beside it on the other core (see docs/snapshot.md for the rates this bought).
 * Chunks come back by transfer: nothing is copied between threads.
 */
export class FileReader {
  private nextId = 0;
  private readonly listeners = new Map<number, Listener>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (message: ReadReply) => this.listeners.get(message.id)?.(message));
    const stop = (error?: Error) => {
      this.failure = error ?? new Error('the file reading thread stopped');
      for (const [id, listener] of this.listeners) listener({ type: 'error', id, code: undefined, message: this.failure.message });
      this.listeners.clear();
    };
    worker.on('error', stop);
    worker.on('exit', () => stop());
  }

  static start(): FileReader {
    // read-worker.ts under the test runner (Node strips its types), read-worker.js once built.
    const worker = new URL(`./read-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    // No inherited flags: `--input-type` and the like make no sense for a module file.
    return new FileReader(new Worker(worker, { execArgv: [] }));
  }

  /**
   * Opens a file to be stored once, as it is at this moment: its size when opened bounds the
   * read, so a file still being written cannot keep the upload going. `exactSize` (tar
   * entries, whose header carries the size) pads a file that shrank while being read with
   * zeros; the manifest then says it changed.
   */
  async open(file: FoundFile, options: { exactSize: boolean; partSize: number }): Promise<FileRead> {
    const id = this.nextId++;
    const replies: ReadReply[] = [];
    let wake: (() => void) | undefined;
    const parts = new Map<number, string>();
    const partWaiters = new Map<number, { resolve: (crc32: string) => void; reject: (error: Error) => void }>();
    let failed: Error | undefined;
    this.listeners.set(id, (message) => {
      if (message.type === 'part') {
        parts.set(message.number, message.crc32);
        partWaiters.get(message.number)?.resolve(message.crc32);
        partWaiters.delete(message.number);
        return;
      }
      if (message.type === 'error') {
        failed = readError(message);
        for (const waiter of partWaiters.values()) waiter.reject(failed);
        partWaiters.clear();
      }
      replies.push(message);
      wake?.();
    });
    const next = async (request: ReadRequest): Promise<ReadReply> => {
      if (this.failure) return { type: 'error', id, code: undefined, message: this.failure.message };
      this.worker.postMessage(request);
      while (replies.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return replies.shift()!;
    };

    const opened = await next({ type: 'open', id, path: file.source, padToSize: options.exactSize, chunkSize: CHUNK_SIZE, partSize: options.partSize });
    if (opened.type !== 'opened') {
      this.listeners.delete(id);
      throw readError(opened);
    }
    const reader = this;
    const body = new Readable({
      highWaterMark: 2 * CHUNK_SIZE,
      read() {
        next({ type: 'read', id }).then((message) => {
          if (message.type === 'chunk') this.push(Buffer.from(message.chunk, 0, message.length));
          else if (message.type === 'end') this.push(null);
          else this.destroy(readError(message));
        });
      },
      destroy(error, callback) {
        // Read to the end, the file stays open for `result()`; cut short, it is closed now.
        if (!this.readableEnded && !reader.failure) reader.worker.postMessage({ type: 'close', id } satisfies ReadRequest);
        callback(error);
      },
    });

    return {
      body,
      size: opened.size,
      partCrc32: (number) => {
        const known = parts.get(number);
        if (known !== undefined) return Promise.resolve(known);
        if (failed) return Promise.reject(failed);
        return new Promise((resolve, reject) => partWaiters.set(number, { resolve, reject }));
      },
      result: async () => {
        const done = await next({ type: 'finish', id });
        this.listeners.delete(id);
        if (done.type !== 'finished') throw readError(done);
        const notes: string[] = [];
        if (opened.size !== file.size || opened.mtimeMs !== file.mtimeMs) notes.push(`changed after it was found (${file.size} bytes then, ${opened.size} when opened)`);
        if (done.bytesRead !== opened.size) notes.push(`shrank to ${done.bytesRead} bytes while being read${options.exactSize ? ' (padded with zeros)' : ''}`);
        if (!done.after) notes.push('removed while being read');
        else if (done.after.size !== opened.size || done.after.mtimeMs !== opened.mtimeMs) notes.push(`written to while being read (now ${done.after.size} bytes); stored as of opening`);
        return {
          size: options.exactSize ? opened.size : done.bytesRead,
          mtimeMs: opened.mtimeMs,
          sha256: done.sha256,
          ...(notes.length ? { changed: notes.join('; ') } : {}),
        };
      },
    };
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

function readError(message: ReadReply): Error {
  const text = message.type === 'error' ? message.message : `unexpected reply ${message.type}`;
  return Object.assign(new Error(text), { code: message.type === 'error' ? message.code : undefined });
}
