/** A size pooled buffers are rounded up to, so a buffer serves the next request of about the same size. */
const POOL_STEP_BYTES = 1024 * 1024;

/**
 * Bytes of free buffers kept at most: what a restore has in flight (4 files, each 32 MiB ahead
 * plus the request being written: restore-chunks.ts), so requests of changing sizes cannot
 * pile up buffers none of them fits.
 */
export const MAX_FREE_BYTES = 192 * 1024 * 1024;

/**
 * The buffers a restore's requests are read into, reused from one request to the next. A new
 * buffer of a few MiB costs its pages' first touch (the kernel zeroes each one) and, held
 * until written, the garbage collector's time; requests of `pooledBytes` or more reuse one
 * given back. Those are shared memory, so a reading thread hashes their chunks in place
 * (restore.ts). Smaller ones are plain allocations: the caller may hold those as long as it likes.
 */
export class RequestBuffers {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;

  constructor(readonly pooledBytes: number) {}

  /** A buffer of exactly `bytes`. */
  take(bytes: number): Buffer {
    if (bytes < this.pooledBytes) return Buffer.allocUnsafe(bytes);
    // The smallest free buffer that fits: a large one stays for a large request.
    let index = -1;
    this.free.forEach((buffer, at) => {
      if (buffer.length >= bytes && (index < 0 || buffer.length < this.free[index]!.length)) index = at;
    });
    if (index < 0) return Buffer.from(new SharedArrayBuffer(Math.ceil(bytes / POOL_STEP_BYTES) * POOL_STEP_BYTES)).subarray(0, bytes);
    const [whole] = this.free.splice(index, 1);
    this.freeBytes -= whole!.length;
    return whole!.subarray(0, bytes);
  }

  /** Gives back a buffer `take` returned, once nothing reads or writes it any more. */
  release(buffer: Buffer): void {
    if (buffer.length < this.pooledBytes || this.freeBytes + buffer.buffer.byteLength > MAX_FREE_BYTES) return;
    const whole = Buffer.from(buffer.buffer, 0, buffer.buffer.byteLength);
    this.free.push(whole);
    this.freeBytes += whole.length;
  }
}
