import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { CHUNKER_VERSION, ContentChunker, checkChunkSizes, type ChunkSizes } from '../../src/snapshots/chunker.js';
import { seededRandom, testBytes, testRandom } from '../helpers/seed.js';

/** Bytes from an explicit seed (a fast-check value), so a failing case can be replayed. */
const bytesOf = (size: number, seed: number) => seededRandom(seed, 'chunker').bytes(size);


const SMALL: ChunkSizes = { minSize: 2048, avgSize: 8192, maxSize: 32768 };

/** What `onChunk` gives for each chunk of `data` fed in pieces cut at `splits`, hashed or measured as it comes. */
function chunked<T>(data: Buffer, onChunk: (chunk: Uint8Array) => T, sizes: ChunkSizes = SMALL, splits: number[] = []): T[] {
  const chunker = new ContentChunker(sizes);
  const found: T[] = [];
  const each = (chunk: Uint8Array) => found.push(onChunk(chunk));
  let from = 0;
  for (const at of [...splits].sort((a, b) => a - b)) {
    chunker.push(data.subarray(from, at), each);
    from = at;
  }
  chunker.push(data.subarray(from), each);
  chunker.end(each);
  return found;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Chunk lengths of `data` fed in pieces cut at `splits`. */
function chunkLengths(data: Buffer, sizes: ChunkSizes = SMALL, splits: number[] = []): number[] {
  return chunked(data, (chunk) => chunk.length, sizes, splits);
}

/**
 * The cut written plainly in JavaScript from FastCDC's description, independent of gear-cut.wat:
 * the gear table from the same seed, a hash over the bytes from minSize on, the top bits of
 * the hash as the mask (log2(avg) + 2 of them up to the average size, log2(avg) - 2 after).
 */
function referenceLengths(data: Uint8Array, sizes: ChunkSizes): number[] {
  const gear = new Int32Array(256);
  let state = 0x9e3779b9;
  for (let i = 0; i < 256; i += 1) {
    state = (state + 0x9e3779b9) | 0;
    let z = Math.imul(state ^ (state >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    gear[i] = z ^ (z >>> 16);
  }
  const bits = Math.log2(sizes.avgSize);
  const top = (n: number) => (n >= 32 ? -1 : ~(0xffffffff >>> n) | 0);
  const lengths: number[] = [];
  for (let start = 0; start < data.length; ) {
    let cut = Math.min(data.length, start + sizes.maxSize);
    let h = 0;
    for (let i = start + sizes.minSize; i < cut; i += 1) {
      h = ((h << 1) + gear[data[i]!]!) | 0;
      const mask = i - start < sizes.avgSize ? top(bits + 2) : top(Math.max(1, bits - 2));
      if ((h & mask) === 0) {
        cut = i + 1;
        break;
      }
    }
    lengths.push(cut - start);
    start = cut;
  }
  return lengths;
}

function chunkHashes(data: Buffer, sizes: ChunkSizes = SMALL): string[] {
  let offset = 0;
  return chunkLengths(data, sizes).map((length) => {
    const hash = sha256(data.subarray(offset, offset + length));
    offset += length;
    return hash;
  });
}

describe('content-defined chunking', () => {
  test('the chunks cover the stream exactly, each within the sizes but the last', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), (size, seed) => {
        const data = bytesOf(size, seed);
        const lengths = chunkLengths(data);
        expect(lengths.reduce((a, b) => a + b, 0)).toBe(size);
        lengths.slice(0, -1).forEach((length) => expect(length).toBeGreaterThanOrEqual(SMALL.minSize));
        lengths.forEach((length) => expect(length).toBeLessThanOrEqual(SMALL.maxSize));
      }),
      { numRuns: 40 },
    );
  });

  test('the same chunks whatever pieces the stream arrives in', () => {
    const data = testBytes(400_000);
    const whole = chunkLengths(data);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: data.length }), { maxLength: 30 }), (splits) => {
        expect(chunkLengths(data, SMALL, splits)).toEqual(whole);
      }),
      { numRuns: 60 },
    );
  });

  test('the bytes of each chunk, as given, are those of the stream whatever pieces it arrives in', () => {
    const data = testBytes(400_000);
    const whole = chunkHashes(data);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: data.length }), { maxLength: 30 }), (splits) => {
        // Hashed in the callback: a chunk is a view of memory the chunker reuses.
        expect(chunked(data, sha256, SMALL, splits)).toEqual(whole);
      }),
      { numRuns: 60 },
    );
  });

  test('keeps its own copy of what it holds between pushes: the caller may reuse a pushed Buffer', () => {
    const data = testBytes(100_000);
    const expected = chunkHashes(data);
    const chunker = new ContentChunker(SMALL);
    const piece = Buffer.alloc(10_000);
    const hashes: string[] = [];
    const hash = (chunk: Uint8Array) => hashes.push(sha256(chunk));
    for (let at = 0; at < data.length; at += piece.length) {
      data.copy(piece, 0, at, at + piece.length);
      chunker.push(piece, hash);
      piece.fill(0xee);
    }
    chunker.end(hash);
    expect(hashes).toEqual(expected);
  });

  test('cuts where a plain JavaScript reference of the algorithm cuts, for any sizes and pushes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 14 }),
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 2, max: 16 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 200_000 }), { maxLength: 8 }),
        (avgBits, minPercent, maxTimes, size, seed, splits) => {
          const avgSize = 2 ** avgBits;
          const sizes = { minSize: Math.floor((avgSize * minPercent) / 100), avgSize, maxSize: avgSize * maxTimes };
          // Random bytes, then a run of zeros: content boundaries and forced ones.
          const data = Buffer.concat([bytesOf(size, seed), Buffer.alloc(size % (3 * sizes.maxSize))]);
          expect(chunkLengths(data, sizes, splits.filter((at) => at <= data.length))).toEqual(referenceLengths(data, sizes));
        },
      ),
      { numRuns: 80 },
    );
  });

  test('cuts parts in shared memory (as the reading threads give them) at any alignment the same', () => {
    const data = testBytes(150_000);
    const expected = referenceLengths(data, SMALL);
    for (let shift = 0; shift < 8; shift += 1) {
      const shared = Buffer.from(new SharedArrayBuffer(data.length + shift), shift);
      data.copy(shared);
      expect(chunkLengths(shared, SMALL, [shift + 1000, 3 * shift + 40_001, 77_777])).toEqual(expected);
    }
  });

  test('a chunker that ended gives its memory to the next, which cuts the same', () => {
    const data = testBytes(300_000);
    const first = new ContentChunker(SMALL);
    const lengths: number[] = [];
    first.push(data, (chunk) => lengths.push(chunk.length));
    first.end((chunk) => lengths.push(chunk.length));
    expect(lengths).toEqual(referenceLengths(data, SMALL));
    // Reused after a larger window: what it held before must not leak into the next stream.
    const small = { minSize: 16, avgSize: 64, maxSize: 256 };
    const short = testBytes(1000);
    expect(chunkLengths(short, small)).toEqual(referenceLengths(short, small));
    expect(chunkLengths(data, SMALL)).toEqual(lengths);
  });

  test('an insertion changes only the chunks around it: the rest are the same chunks again', () => {
    // Boundaries resynchronize once both cuts land on one position; normalized chunking picks
    // its mask by the distance from the chunk's start, so now and then that takes several
    // chunks. Measured over 1,500 cases: within 3 chunks past the inserted bytes in 99.1 %,
    // 9 at most. So a rate and a cap, not the tight bound on every case (that failed ~1 run in 5).
    const random = testRandom();
    let near = 0;
    for (let run = 0; run < 40; run += 1) {
      const data = random.bytes(400_000);
      const inserted = random.int(1, 50_000);
      const at = random.int(20_000, 380_000);
      const changed = Buffer.concat([data.subarray(0, at), random.bytes(inserted), data.subarray(at)]);
      const before = new Set(chunkHashes(data));
      const extra = chunkHashes(changed).filter((hash) => !before.has(hash)).length - Math.ceil(inserted / SMALL.minSize);
      if (extra <= 3) near += 1;
      expect(extra).toBeLessThanOrEqual(15);
    }
    expect(near).toBeGreaterThanOrEqual(36);
  });

  test('sizes gather around the average on random data', () => {
    const lengths = chunkLengths(testBytes(8_000_000));
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    expect(mean).toBeGreaterThan(SMALL.avgSize * 0.7);
    expect(mean).toBeLessThan(SMALL.avgSize * 1.6);
    // Normalized chunking: few chunks are cut by force at maxSize.
    expect(lengths.filter((length) => length === SMALL.maxSize).length / lengths.length).toBeLessThan(0.02);
  });

  test('data without content boundaries (zeros) is cut at maxSize', () => {
    expect(chunkLengths(Buffer.alloc(100_000))).toEqual([32768, 32768, 32768, 100_000 - 3 * 32768]);
  });

  test('the boundaries are a storage format: pinned for this version', () => {
    // Changing the gear table or the masks makes every stored chunk new: bump CHUNKER_VERSION.
    expect(CHUNKER_VERSION).toBe('fastcdc-gear32-v2');
    const lengths = chunkLengths(bytesOf(200_000, 42));
    expect(createHash('sha256').update(lengths.join(',')).digest('hex').slice(0, 16)).toBe('130d1c12488bfb84');
  });

  test.each([
    [{ minSize: 10, avgSize: 1000, maxSize: 4000 }, 'avgSize 1000: expected a power of two, at least 64'],
    [{ minSize: 4096, avgSize: 4096, maxSize: 8192 }, 'minSize 4096: expected at least 0 and below avgSize 4096'],
    [{ minSize: 0, avgSize: 4096, maxSize: 4096 }, 'maxSize 4096: expected above avgSize 4096 and at most 67108864'],
    [{ minSize: 0, avgSize: 4096, maxSize: 2 ** 27 }, 'maxSize 134217728: expected above avgSize 4096 and at most 67108864'],
  ])('refuses sizes %j', (sizes, message) => {
    expect(checkChunkSizes(sizes)).toBe(message);
    expect(() => new ContentChunker(sizes)).toThrow(message);
  });
});
