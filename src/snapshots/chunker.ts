/**
 * Content-defined chunking (FastCDC with normalized chunking): chunk boundaries come from the
 * bytes themselves, so inserting or removing bytes in a file moves only the boundaries next to
 * the change, and every chunk after it is the same chunk again, stored once.
 *
 * The boundaries are a storage format: the gear table and the masks below decide which chunks
 * a stored snapshot has, and a change to either makes every file new again. CHUNKER_VERSION
 * names them; a manifest records it, and test/unit/chunker.test.ts pins their output.
 */

/** v2: SNAPSHOT_CHUNK_SIZES went from 64/256/2048 KiB to 32/128/1024 KiB once chunks were packed. */
export const CHUNKER_VERSION = 'fastcdc-gear32-v2';

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
 * a rewritten 1 MiB region re-sends the chunks it touches, about 1 MiB plus one average chunk.
 * Chunks are stored inside packs of a few MiB (pack-writer.ts), so their size no longer sets
 * the size of an object: 32/128/1024 KiB measured about 1.32x the changed bytes on rewritten
 * 1 MiB regions and 1.18x on issue 14's whole delta. Their boundaries change with them, hence
 * the version.
 */
export const SNAPSHOT_CHUNK_SIZES: ChunkSizes = { minSize: 32 * 1024, avgSize: 128 * 1024, maxSize: 1024 * 1024 };

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

interface Cutting {
  minSize: number;
  normalSize: number;
  maxSize: number;
  maskSmall: number;
  maskLarge: number;
}

/**
 * Where the chunk starting at `start` ends: the first position after minSize where the gear
 * hash of the bytes since minSize meets the mask (harder before the normal size, easier
 * after), or maxSize, or `end`. Pure and over one contiguous array, and unrolled by four:
 * measured on this project's machine, carrying the hash across pushes in object fields ran
 * at 270-370 MB/s, this loop rolled at 740-800 MB/s, unrolled at 1.0-1.1 GB/s (chunking
 * alone, 8 MiB pushes).
 */
function cutPoint(data: Uint8Array, start: number, end: number, cutting: Cutting, gear: Int32Array): number {
  let i = start + cutting.minSize;
  if (i >= end) return end;
  const normal = Math.min(end, start + cutting.normalSize);
  const max = Math.min(end, start + cutting.maxSize);
  let h = 0;
  for (const [limit, mask] of [
    [normal, cutting.maskSmall],
    [max, cutting.maskLarge],
  ] as const) {
    for (; i + 4 <= limit; i += 4) {
      h = ((h << 1) + gear[data[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
      h = ((h << 1) + gear[data[i + 1]!]!) | 0;
      if ((h & mask) === 0) return i + 2;
      h = ((h << 1) + gear[data[i + 2]!]!) | 0;
      if ((h & mask) === 0) return i + 3;
      h = ((h << 1) + gear[data[i + 3]!]!) | 0;
      if ((h & mask) === 0) return i + 4;
    }
    for (; i < limit; i += 1) {
      h = ((h << 1) + gear[data[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
    }
  }
  return max;
}

/**
 * Splits a stream of buffers into chunks. Feed it the bytes in order with `push` (any split of
 * the stream gives the same chunks), then call `end`. Each returns the chunks completed, in
 * order, as bytes: views into the array just pushed or into the chunker's own memory, valid
 * until the next call, so use (hash, copy) them before.
 */
export class ContentChunker {
  private readonly cutting: Cutting;
  /**
   * The start of the chunk being cut, `held[heldFrom, heldTo)`, kept until a whole maxSize window
   * (or the end) is here; a window is built by copying the next bytes after it. Two buffers
   * in turn, reused: a push keeps its unfinished end in the one its chunks are not in.
   * Allocating the window and the kept end anew on every push left the reading threads
   * 140-200 MB of garbage behind (their peak RSS, reading 1 GiB).
   */
  private held: Uint8Array = new Uint8Array(0);
  private spare: Uint8Array = new Uint8Array(0);
  private heldFrom = 0;
  private heldTo = 0;

  constructor(sizes: ChunkSizes) {
    const problem = checkChunkSizes(sizes);
    if (problem) throw new RangeError(`chunk sizes: ${problem}`);
    const bits = Math.log2(sizes.avgSize);
    this.cutting = {
      minSize: sizes.minSize,
      normalSize: sizes.avgSize,
      maxSize: sizes.maxSize,
      maskSmall: topBits(bits + 2),
      maskLarge: topBits(Math.max(1, bits - 2)),
    };
  }

  push(data: Uint8Array): Uint8Array[] {
    const { maxSize } = this.cutting;
    const chunks: Uint8Array[] = [];
    // The kept bytes first move to the start of the spare buffer, so windows never run past 2 x maxSize.
    if (this.heldFrom > 0) this.keep(this.held.subarray(this.heldFrom, this.heldTo));
    // Chunks that began in earlier pushes: each decided over one contiguous window, the kept
    // bytes followed by `data`'s first `appended`. A cut may fall among the kept bytes (they
    // were short of a window), and then their rest goes on.
    const kept = this.heldTo;
    let appended = 0;
    while (this.heldFrom < kept) {
      const windowEnd = this.heldFrom + maxSize;
      const wanted = windowEnd - this.heldTo;
      if (data.length - appended < wanted) {
        this.append(data.subarray(appended));
        return chunks;
      }
      this.append(data.subarray(appended, appended + wanted));
      appended += wanted;
      const cut = cutPoint(this.held, this.heldFrom, windowEnd, this.cutting, GEAR);
      chunks.push(this.held.subarray(this.heldFrom, cut));
      this.heldFrom = cut;
    }
    let from = this.heldFrom - kept;
    // A cut needs at most maxSize bytes ahead; the rest waits for the next push.
    while (data.length - from >= maxSize) {
      const cut = cutPoint(data, from, data.length, this.cutting, GEAR);
      chunks.push(data.subarray(from, cut));
      from = cut;
    }
    // Kept apart from this push's chunks, and copied: the caller may reuse `data`'s memory.
    this.keep(data.subarray(from));
    return chunks;
  }

  /** The chunks left when the stream ends (the last may be short), and a fresh start. */
  end(): Uint8Array[] {
    const chunks: Uint8Array[] = [];
    for (let from = this.heldFrom; from < this.heldTo; ) {
      const cut = cutPoint(this.held, from, this.heldTo, this.cutting, GEAR);
      chunks.push(this.held.subarray(from, cut));
      from = cut;
    }
    this.heldFrom = 0;
    this.heldTo = 0;
    return chunks;
  }

  /** Makes `bytes` the kept ones, copied to the start of the spare buffer, which becomes `held`. */
  private keep(bytes: Uint8Array): void {
    if (this.spare.length < bytes.length) this.spare = new Uint8Array(this.capacityFor(bytes.length));
    this.spare.set(bytes);
    [this.held, this.spare] = [this.spare, this.held];
    this.heldFrom = 0;
    this.heldTo = bytes.length;
  }

  /** Copies `bytes` after the kept ones, growing `held` (into new memory: chunks may be views of the old). */
  private append(bytes: Uint8Array): void {
    const end = this.heldTo + bytes.length;
    if (this.held.length < end) {
      const grown = new Uint8Array(this.capacityFor(end));
      grown.set(this.held.subarray(0, this.heldTo));
      this.held = grown;
    }
    this.held.set(bytes, this.heldTo);
    this.heldTo = end;
  }

  /** Small files stay small; a stream that needs windows gets the most it can need, 2 x maxSize, once. */
  private capacityFor(size: number): number {
    return size <= 64 * 1024 ? size : Math.max(size, 2 * this.cutting.maxSize);
  }
}
