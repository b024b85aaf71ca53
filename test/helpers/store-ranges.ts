import type { ObjectStore, ByteRange } from '../../src/stores/types.js';
import { testBytes } from './seed.js';

/** The size of the object every store's range tests read from. */
export const RANGED_OBJECT_SIZE = 1000;

/** The object itself: random bytes, so a range cut from the wrong place shows. */
export const rangedObject = (): Buffer => testBytes(RANGED_OBJECT_SIZE);

/**
 * The ranges every store is asked for, with the bytes of the object each gives: what there is
 * when it runs past the end, nothing when it starts there (the caller checks the length).
 */
export const RANGE_CASES: { name: string; range: ByteRange; from: number; to: number }[] = [
  { name: 'a middle range', range: { offset: 100, length: 200 }, from: 100, to: 300 },
  { name: 'the first byte', range: { offset: 0, length: 1 }, from: 0, to: 1 },
  { name: 'a range at the end', range: { offset: 900, length: 100 }, from: 900, to: 1000 },
  { name: 'a range that runs past the end', range: { offset: 950, length: 100 }, from: 950, to: 1000 },
  { name: 'a range that starts at the end', range: { offset: 1000, length: 10 }, from: 1000, to: 1000 },
  { name: 'a range that starts past the end', range: { offset: 4000, length: 10 }, from: 1000, to: 1000 },
];

/** Every byte `store.get` streams for `key` (and `range`). */
export async function bytesGot(store: ObjectStore, key: string, range?: ByteRange): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of await store.get(key, range)) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}
