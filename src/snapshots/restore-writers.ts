import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ChunkWrite, ChunkWritten } from './restore-worker.js';

interface Thread {
  worker: Worker;
  pending: Map<number, (reply: ChunkWritten) => void>;
  /** Chunks not yet posted, and their bytes: sent together (see post()). */
  queued: ChunkWrite[];
  queuedBytes: number;
}

/**
 * Shared memory a chunk is copied into for its thread: room for an average chunk (256 KiB)
 * and more. Slots are reused, so a restore allocates a few and not one buffer a chunk (fresh
 * buffers of 256 KiB, each handed over and freed by another thread's garbage collector, cost
 * 0.8 CPU-s/GB more in page faults and collections, and doubled the peak RSS).
 */
const SLOT_BYTES = 1024 * 1024;

/** Bytes of chunks queued for a thread before they are posted to it (see post()). */
const POST_BYTES = 4 * 1024 * 1024;

/**
 * The threads a dedup restore verifies and writes chunks on: the main thread only fetches
 * (HTTP, signing, one copy of each chunk into shared memory), so a restore uses every core,
 * as rclone does. A chunk goes to the thread with the fewest chunks waiting. A thread that
 * stops (a crash, close()) fails every chunk it held and every chunk after, with a message
 * saying so: nothing waits for it forever.
 */
export class ChunkWriters {
  private nextId = 0;
  private stopped: string | undefined;
  private readonly threads: Thread[];
  private readonly free: SharedArrayBuffer[] = [];

  private constructor(threads: Thread[]) {
    this.threads = threads;
    for (const thread of threads) {
      thread.worker.on('message', (replies: ChunkWritten[]) => {
        for (const reply of replies) {
          const settle = thread.pending.get(reply.id);
          thread.pending.delete(reply.id);
          settle?.(reply);
        }
      });
      const stop = (error?: Error) => this.fail(thread, error ? `the restore writing thread failed: ${error.message}` : 'the restore writing thread stopped');
      thread.worker.on('error', stop);
      thread.worker.on('exit', () => stop());
    }
  }

  /** One thread a core (at most 4): each hashes at about 1 GB/s, beyond the fetches here. */
  static start(count = Math.min(4, availableParallelism() - 1)): ChunkWriters {
    // restore-worker.ts under the test runner (Node strips its types), restore-worker.js once built.
    const script = new URL(`./restore-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    // No inherited flags: `--input-type` and the like make no sense for a module file.
    return new ChunkWriters(Array.from({ length: Math.max(1, count) }, () => ({ worker: new Worker(script, { execArgv: [] }), pending: new Map(), queued: [], queuedBytes: 0 })));
  }

  /**
   * Checks that the bytes of `pieces` (`length` in all) have the SHA-256 `sha256`, then
   * writes them at `offset` of the open file `fd`. Resolves once done, after flush() at the
   * latest; `fd` must stay open until then. The pieces are copied: the caller may reuse them.
   */
  async write(fd: number, offset: number, pieces: Buffer[], length: number, sha256: string): Promise<ChunkWritten> {
    if (this.stopped) return { id: -1, type: 'failed', message: this.stopped };
    const thread = this.threads.reduce((best, each) => (each.pending.size < best.pending.size ? each : best));
    // A chunk larger than a slot (a crafted manifest's, once its bytes are all here) gets memory of its own.
    const slot = length > SLOT_BYTES ? new SharedArrayBuffer(length) : (this.free.pop() ?? new SharedArrayBuffer(SLOT_BYTES));
    const into = Buffer.from(slot);
    let at = 0;
    for (const piece of pieces) at += piece.copy(into, at);
    const id = this.nextId++;
    const request: ChunkWrite = { id, fd, offset, bytes: slot, length, sha256 };
    const reply = await new Promise<ChunkWritten>((resolve) => {
      thread.pending.set(id, resolve);
      thread.queued.push(request);
      thread.queuedBytes += length;
      if (thread.queuedBytes >= POST_BYTES) this.post(thread);
    });
    if (slot.byteLength === SLOT_BYTES) this.free.push(slot);
    return reply;
  }

  /** Stops every thread; chunks still held fail. Call once no write is awaited any more. */
  async close(): Promise<void> {
    this.stopped ??= 'the restore writing threads were closed';
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  /** Posts every chunk still queued: call it before waiting for a write. */
  flush(): void {
    for (const thread of this.threads) this.post(thread);
  }

  /**
   * Posts the chunks queued for `thread` in one message. Each message wakes a thread, and a
   * thread woken on a busy machine takes the core this one ran on: posted a chunk (or an
   * event loop turn's chunks) at a time, the restore ran at half the speed of one thread.
   */
  private post(thread: Thread): void {
    const batch = thread.queued;
    thread.queued = [];
    thread.queuedBytes = 0;
    if (batch.length > 0 && !this.stopped) thread.worker.postMessage(batch);
  }

  private fail(thread: Thread, message: string): void {
    this.stopped ??= message;
    for (const [id, settle] of thread.pending) settle({ id, type: 'failed', message });
    thread.pending.clear();
  }
}
