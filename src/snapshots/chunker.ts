/**
 * Content-defined chunking (FastCDC with normalized chunking): chunk boundaries come from the
 * bytes themselves, so inserting or removing bytes in a file moves only the boundaries next to
 * the change, and every chunk after it is the same chunk again, stored once.
 *
 * The boundaries are a storage format: the gear table and the masks below decide which chunks
 * a stored snapshot has, and a change to either makes every file new again. CHUNKER_VERSION
 * names them; a manifest records it, and test/unit/chunker.test.ts pins their output.
 */

import { GEAR_CUT_WASM } from './gear-cut-wasm.ts';

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

/** The cut's memory holds three times maxSize and WebAssembly addresses 4 GiB at most: far below both. */
const MAX_CHUNK_SIZE = 64 * 1024 * 1024;

export function checkChunkSizes(sizes: ChunkSizes): string | undefined {
  const { minSize, avgSize, maxSize } = sizes;
  if (!Number.isSafeInteger(avgSize) || avgSize < 64 || (avgSize & (avgSize - 1)) !== 0) return `avgSize ${avgSize}: expected a power of two, at least 64`;
  if (!(minSize >= 0 && minSize < avgSize)) return `minSize ${minSize}: expected at least 0 and below avgSize ${avgSize}`;
  if (!(maxSize > avgSize && maxSize <= MAX_CHUNK_SIZE)) return `maxSize ${maxSize}: expected above avgSize ${avgSize} and at most ${MAX_CHUNK_SIZE}`;
  return undefined;
}

interface Cutting {
  minSize: number;
  normalSize: number;
  maxSize: number;
  maskSmall: number;
  maskLarge: number;
}

/** The cut (gear-cut.wat) with its memory: the gear table, then the bytes being cut. */
interface Cutter {
  memory: WebAssembly.Memory;
  /** Where the chunk starting at `start` ends given the bytes up to `end` (offsets in memory): see gear-cut.wat. */
  cut(start: number, end: number, minSize: number, normalSize: number, maxSize: number, maskSmall: number, maskLarge: number): number;
}

/** The bytes being cut start here in a cutter's memory, after the gear table. */
const WINDOW = GEAR.length * 4;
/** The widest alignment a copy into the window keeps (see push). */
const ALIGN = 8;
const WASM_PAGE = 65536;

let compiled: WebAssembly.Module | undefined;
/**
 * Cutters whose chunker ended, kept for the next one: a thread cuts file after file, and a new
 * instance with its own memory cost about 44 us (a small file's whole cut costs less). As
 * many as files are cut at once on a thread by default (snapshot options' concurrency); more
 * are dropped, so a long-lived thread (the sync's) keeps at most that many windows.
 */
const idleCutters: Cutter[] = [];
const MAX_IDLE_CUTTERS = 4;

function newCutter(): Cutter {
  // Node run with --jitless or --lite-mode has no WebAssembly.
  if (typeof WebAssembly === 'undefined') throw new Error('content-defined chunking needs WebAssembly, which this Node runs without (started with --jitless or --lite-mode?)');
  compiled ??= new WebAssembly.Module(Buffer.from(GEAR_CUT_WASM, 'base64'));
  const exports = new WebAssembly.Instance(compiled).exports as unknown as Cutter;
  const cutter = { memory: exports.memory, cut: exports.cut };
  // Little-endian whatever the host, as WebAssembly reads it.
  const table = new DataView(cutter.memory.buffer, 0, WINDOW);
  GEAR.forEach((value, index) => table.setInt32(index * 4, value, true));
  return cutter;
}

/** Grows the cutter's memory to hold a window of `windowBytes`: a small file's stays small. */
function makeRoom(cutter: Cutter, windowBytes: number): void {
  const missing = WINDOW + windowBytes - cutter.memory.buffer.byteLength;
  if (missing > 0) cutter.memory.grow(Math.ceil(missing / WASM_PAGE));
}

/**
 * Splits a stream of bytes into chunks. Feed it the bytes in order with `push` (any split of
 * the stream gives the same chunks), then call `end`. Each hands the chunks completed, in
 * order, to `onChunk` as views into the chunker's own memory, valid until `onChunk` returns:
 * use (hash, copy) them there. The caller may reuse a pushed array once `push` returns.
 */
export class ContentChunker {
  private readonly cutting: Cutting;
  /**
   * Bytes copied into the cutter's memory at a time. With up to maxSize - 1 bytes held from
   * before, the window never exceeds ALIGN + maxSize + sliceSize, whatever the size of a push;
   * the held bytes move before each slice, so a larger slice moves less.
   */
  private readonly sliceSize: number;
  /** Taken at the first push, given back by `end`. */
  private cutter: Cutter | undefined;
  /** Bytes of the stream in the window, not yet in a chunk: `held` of them from `start`. */
  private start = 0;
  private held = 0;

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
    this.sliceSize = 2 * sizes.maxSize;
  }

  push(data: Uint8Array, onChunk: (chunk: Uint8Array) => void): void {
    this.cutter ??= idleCutters.pop() ?? newCutter();
    for (let at = 0; at < data.length; at += this.sliceSize) {
      const slice = data.subarray(at, at + this.sliceSize);
      makeRoom(this.cutter, ALIGN + this.held + slice.length);
      // A view made now: growing the memory replaces its buffer.
      const window = new Uint8Array(this.cutter.memory.buffer, WINDOW);
      // The held bytes move to the window's start, placed so that the slice goes after them
      // at the alignment it has where it comes from. V8 copies out of shared memory (the
      // reading threads' parts) word by word only between equally aligned addresses, else
      // byte by byte (TypedArray#set and Buffer#copy alike): cutting parts read from a file
      // measured 0.42 CPU-s/GB unaligned, 0.25 aligned.
      const start = (((slice.byteOffset - this.held) % ALIGN) + ALIGN) % ALIGN;
      window.copyWithin(start, this.start, this.start + this.held);
      this.start = start;
      window.set(slice, start + this.held);
      this.held += slice.length;
      // A cut needs at most maxSize bytes ahead; the rest waits for more.
      this.cutHeld(this.cutting.maxSize, onChunk);
    }
  }

  /** The chunks left when the stream ends (the last may be short), and a fresh start. */
  end(onChunk: (chunk: Uint8Array) => void): void {
    if (!this.cutter) return;
    this.cutHeld(1, onChunk);
    if (idleCutters.length < MAX_IDLE_CUTTERS) idleCutters.push(this.cutter);
    this.cutter = undefined;
  }

  /** Cuts chunks while `ahead` bytes or more are held. */
  private cutHeld(ahead: number, onChunk: (chunk: Uint8Array) => void): void {
    const { memory, cut } = this.cutter!;
    const { minSize, normalSize, maxSize, maskSmall, maskLarge } = this.cutting;
    const window = new Uint8Array(memory.buffer, WINDOW);
    const end = this.start + this.held;
    let from = this.start;
    while (end - from >= ahead) {
      const to = cut(WINDOW + from, WINDOW + end, minSize, normalSize, maxSize, maskSmall, maskLarge) - WINDOW;
      onChunk(window.subarray(from, to));
      from = to;
    }
    this.start = from;
    this.held = end - from;
  }
}
