/**
 * Content-defined chunking (FastCDC with normalized chunking): chunk boundaries come from the
 * bytes themselves, so inserting or removing bytes in a file moves only the boundaries next to
 * the change, and every chunk after it is the same chunk again, stored once.
 *
 * The boundaries are a storage format: the gear table and the masks below decide which chunks
 * a stored snapshot has, and a change to either makes every file new again. CHUNKER_VERSION
 * names them; a manifest records it, and test/unit/chunker.test.ts pins their output.
 */

export const CHUNKER_VERSION = 'fastcdc-gear32-v1';

export interface ChunkSizes {
  /** No boundary before this many bytes (nor hashing: the gear hash restarts here). */
  minSize: number;
  /** The size chunks gather around; a power of two. */
  avgSize: number;
  /** A boundary is forced here. */
  maxSize: number;
}

/**
 * The sizes snapshots cut files into. Small because the window bounds what a notice can send:
 * a rewritten 1 MiB region re-sends the chunks it touches, about 1 MiB plus one average chunk,
 * so keeping a checkpoint's scattered 1 MiB rewrites within 1.2x of the changed bytes (issue
 * 14's delta goal, where half the change is such regions) needs an average of at most 0.4 MiB.
 * Object stores want objects of a few MiB: chunks this small are to be packed into such objects.
 */
export const SNAPSHOT_CHUNK_SIZES: ChunkSizes = { minSize: 64 * 1024, avgSize: 256 * 1024, maxSize: 2 * 1024 * 1024 };

/** A gear table from a fixed seed (splitmix32): the same 256 values on every machine, forever. */
function gearTable(): Int32Array {
  const table = new Int32Array(256);
  let state = 0x9e3779b9;
  for (let i = 0; i < 256; i += 1) {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    table[i] = z ^ (z >>> 16);
  }
  return table;
}

const GEAR = gearTable();

/**
 * A mask of `bits` ones among the hash's top bits. In a gear hash bit k depends on the last
 * k+1 bytes, so the top bits see the whole 32-byte window.
 */
function topBits(bits: number): number {
  return bits >= 32 ? -1 : ~(0xffffffff >>> bits) | 0;
}

export function checkChunkSizes(sizes: ChunkSizes): string | undefined {
  const { minSize, avgSize, maxSize } = sizes;
  if (!Number.isSafeInteger(avgSize) || avgSize < 64 || (avgSize & (avgSize - 1)) !== 0) return `avgSize ${avgSize}: expected a power of two, at least 64`;
  if (!(minSize >= 0 && minSize < avgSize)) return `minSize ${minSize}: expected at least 0 and below avgSize ${avgSize}`;
  if (!(maxSize > avgSize && Number.isSafeInteger(maxSize))) return `maxSize ${maxSize}: expected above avgSize ${avgSize}`;
  return undefined;
}

/** Scans `data[from, to)` for a position where `hash & mask` is 0; one tight loop for the JIT. */
let scannedHash = 0;
function scan(data: Uint8Array, from: number, to: number, hash: number, mask: number): number {
  let h = hash;
  for (let i = from; i < to; i += 1) {
    h = ((h << 1) + GEAR[data[i]!]!) | 0;
    if ((h & mask) === 0) {
      scannedHash = h;
      return i + 1;
    }
  }
  scannedHash = h;
  return -1;
}

/**
 * Splits a stream of buffers into chunks. Feed it the bytes in order with `push` (any split of
 * the stream gives the same chunks), then call `end`. Each returns the lengths of the chunks
 * completed, in order.
 */
export class ContentChunker {
  private readonly minSize: number;
  private readonly normalSize: number;
  private readonly maxSize: number;
  /** Harder than 1 in avgSize before the normal size, easier after: sizes gather round it. */
  private readonly maskSmall: number;
  private readonly maskLarge: number;
  /** Bytes of the chunk being cut so far, and its gear hash. */
  private length = 0;
  private hash = 0;

  constructor(sizes: ChunkSizes) {
    const problem = checkChunkSizes(sizes);
    if (problem) throw new RangeError(`chunk sizes: ${problem}`);
    const bits = Math.log2(sizes.avgSize);
    this.minSize = sizes.minSize;
    this.normalSize = sizes.avgSize;
    this.maxSize = sizes.maxSize;
    this.maskSmall = topBits(bits + 2);
    this.maskLarge = topBits(Math.max(1, bits - 2));
  }

  push(data: Uint8Array): number[] {
    const cuts: number[] = [];
    let i = 0;
    const end = data.length;
    while (i < end) {
      if (this.length < this.minSize) {
        const skip = Math.min(this.minSize - this.length, end - i);
        i += skip;
        this.length += skip;
        this.hash = 0;
        continue;
      }
      const mask = this.length < this.normalSize ? this.maskSmall : this.maskLarge;
      const limit = this.length < this.normalSize ? this.normalSize : this.maxSize;
      const stop = Math.min(end, i + (limit - this.length));
      const cut = scan(data, i, stop, this.hash, mask);
      if (cut !== -1) {
        this.length += cut - i;
        i = cut;
      } else {
        this.length += stop - i;
        i = stop;
        this.hash = scannedHash;
        if (this.length < this.maxSize) continue;
      }
      cuts.push(this.length);
      this.length = 0;
      this.hash = 0;
    }
    return cuts;
  }

  /** The last chunk's length (0 when the stream ended on a boundary), and a fresh start. */
  end(): number[] {
    const last = this.length;
    this.length = 0;
    this.hash = 0;
    return last > 0 ? [last] : [];
  }
}
