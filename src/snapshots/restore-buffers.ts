/** A size pooled buffers are rounded up to, so a buffer serves the next request of about the same size. */
const POOL_STEP_BYTES = 1024 * 1024;

/** Free buffers kept at most: a restore's requests in flight at once, about (restore-chunks.ts). */
const MAX_FREE = 64;

/**
 * The buffers a restore's requests are read into, reused from one request to the next. A new
 * buffer of a few MiB costs its pages' first touch (the kernel zeroes each one) and, held
 * until written, the garbage collector's time; requests of `pooledBytes` or more reuse one
 * given back. Those are shared memory, so a reading thread hashes their chunks in place
 * (restore.ts). Smaller ones are plain allocations: the caller may hold those as long as it likes.
 */
export class RequestBuffers {
  private readonly free: Buffer[] = [];

  constructor(readonly pooledBytes: number) {}

  /** A buffer of exactly `bytes`. */
  take(bytes: number): Buffer {
    if (bytes < this.pooledBytes) return Buffer.allocUnsafe(bytes);
    const index = this.free.findIndex((buffer) => buffer.length >= bytes);
    const whole = index >= 0 ? this.free.splice(index, 1)[0]! : Buffer.from(new SharedArrayBuffer(Math.ceil(bytes / POOL_STEP_BYTES) * POOL_STEP_BYTES));
    return whole.subarray(0, bytes);
  }

  /** Gives back a buffer `take` returned, once nothing reads or writes it any more. */
  release(buffer: Buffer): void {
    if (buffer.length < this.pooledBytes || this.free.length >= MAX_FREE) return;
    this.free.push(Buffer.from(buffer.buffer, 0, buffer.buffer.byteLength));
  }
}
