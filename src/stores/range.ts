import { Readable } from 'node:stream';
import type { ByteRange } from './types.js';

/** The HTTP `Range` header asking for `range`'s bytes (the last byte is inclusive). */
export function rangeHeader(range: ByteRange): string {
  return `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

/** No bytes: what a range that starts at or past the end of an object gives. */
export function noBytes(): Readable {
  return Readable.from([]);
}

/**
 * `range`'s bytes out of a whole object's body, for a server (or a proxy on the way) that
 * answered a ranged GET with a 200 and all of the object. The rest is not read: the body is
 * destroyed once the range is out.
 */
export function rangeOfWhole(body: Readable, range: ByteRange): Readable {
  async function* cut(): AsyncGenerator<Buffer> {
    let skip = range.offset;
    let left = range.length;
    for await (const piece of body as AsyncIterable<Buffer>) {
      const start = Math.min(skip, piece.length);
      skip -= start;
      const taken = piece.subarray(start, start + left);
      left -= taken.length;
      if (taken.length) yield taken;
      if (left === 0) return;
    }
  }
  return Readable.from(cut(), { objectMode: false });
}
