import type { ByteRange, ObjectStore, ReadInto } from './types.js';

/**
 * An object's bytes (or `range`'s) into `into` from its start: through the store's own
 * `getInto` when it has one for this read, else copied out of `get`'s stream piece by piece,
 * so each piece dies young instead of being held until written. Reads at most `into.length`
 * bytes: an object with more stops there, `more` set.
 */
export async function readInto(store: ObjectStore, key: string, range: ByteRange | undefined, into: Buffer): Promise<ReadInto> {
  const direct = await store.getInto?.(key, range, into);
  if (direct) return direct;
  let length = 0;
  for await (const piece of (await store.get(key, range)) as AsyncIterable<Buffer>) {
    const fits = Math.min(piece.length, into.length - length);
    piece.copy(into, length, 0, fits);
    length += fits;
    if (fits < piece.length) return { length, more: true };
  }
  return { length, more: false };
}
