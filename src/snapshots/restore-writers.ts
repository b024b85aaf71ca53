import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ChunkWrite, ChunkWritten } from './restore-worker.js';

interface Thread {
  worker: Worker;
  pending: Map<number, (reply: ChunkWritten) => void>;
}

/**
 * The threads a dedup restore verifies and writes chunks on: the main thread only fetches
 * (HTTP, signing, copying each chunk into one buffer), so a restore uses every core, as rclone
 * does. A chunk goes to the thread with the fewest chunks waiting. A thread that stops (a
 * crash, close()) fails every chunk it held and every chunk after, with a message saying so:
 * nothing waits for it forever.
 */
export class ChunkWriters {
  private nextId = 0;
  private stopped: string | undefined;
  private readonly threads: Thread[];

  private constructor(threads: Thread[]) {
    this.threads = threads;
    for (const thread of threads) {
      thread.worker.on('message', (reply: ChunkWritten) => {
        const settle = thread.pending.get(reply.id);
        thread.pending.delete(reply.id);
        settle?.(reply);
      });
      const stop = (error?: Error) => this.fail(thread, error ? `the restore writing thread failed: ${error.message}` : 'the restore writing thread stopped');
      thread.worker.on('error', stop);
      thread.worker.on('exit', () => stop());
    }
  }

  /** One thread a core (at most 4): each hashes at about 1 GB/s, beyond the fetches here. */
  static start(count = Math.min(4, availableParallelism())): ChunkWriters {
    // restore-worker.ts under the test runner (Node strips its types), restore-worker.js once built.
    const script = new URL(`./restore-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    // No inherited flags: `--input-type` and the like make no sense for a module file.
    return new ChunkWriters(Array.from({ length: Math.max(1, count) }, () => ({ worker: new Worker(script, { execArgv: [] }), pending: new Map() })));
  }

  /**
   * Checks that `bytes` (a buffer of its own, handed over: unusable here afterwards) has the
   * SHA-256 `sha256`, then writes it at `offset` of the open file `fd`. Resolves once written;
   * `fd` must stay open until then.
   */
  write(fd: number, offset: number, bytes: Buffer, sha256: string): Promise<ChunkWritten> {
    if (this.stopped) return Promise.resolve({ id: -1, type: 'failed', message: this.stopped });
    const thread = this.threads.reduce((best, each) => (each.pending.size < best.pending.size ? each : best));
    const id = this.nextId++;
    // A buffer of its own spans its whole ArrayBuffer; a slice of a shared one is copied first.
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : copied(bytes);
    const request: ChunkWrite = { id, fd, offset, bytes: own.buffer as ArrayBuffer, sha256 };
    return new Promise((resolve) => {
      thread.pending.set(id, resolve);
      thread.worker.postMessage(request, [request.bytes]);
    });
  }

  /** Stops every thread; chunks still held fail. Call once no write is awaited any more. */
  async close(): Promise<void> {
    this.stopped ??= 'the restore writing threads were closed';
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  private fail(thread: Thread, message: string): void {
    this.stopped ??= message;
    for (const [id, settle] of thread.pending) settle({ id, type: 'failed', message });
    thread.pending.clear();
  }
}

/** `bytes` in a buffer of its own (never Buffer's shared pool, which cannot be handed over). */
function copied(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}
