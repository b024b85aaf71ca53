import { keyFor, type StoreLocation } from '../stores/location.js';
import type { ObjectStore } from '../stores/types.js';
import { crc32Combine } from './checksum.js';
import type { StoredChunk } from './manifest.js';
import { newPackId, PACK_TARGET_BYTES, packName } from './repository.js';

export interface PackWriterOptions {
  store: ObjectStore;
  location: StoreLocation;
  /** Stops every pack's put. */
  signal: AbortSignal;
  /** Bytes as the store sends them. */
  onBytes?: (bytes: number) => void;
  /** Sealed packs stored at once; with the open one, what bounds the memory packs hold. */
  maxInFlight: number;
  /** Bytes a pack is filled to before it is stored; PACK_TARGET_BYTES when undefined. */
  targetBytes?: number | undefined;
}

/** A chunk copied into a pack: where it will be, and a promise that settles once its pack is stored. */
export interface PackedChunk {
  chunk: StoredChunk;
  /** Rejects with the put's error when the pack could not be stored: nothing may name the chunk then. */
  stored: Promise<void>;
}

/** A pack being filled. */
interface OpenPack {
  id: string;
  bytes: Buffer;
  filled: number;
  /** CRC32 of bytes[0, filled), joined from the chunks' (the reading threads compute each chunk's). */
  crc32: number;
  stored: Promise<void>;
  settle: { resolve: () => void; reject: (error: unknown) => void };
}

/**
 * Fills packs (`packs/<id>`, repository.ts) with chunks back to back and stores each with one
 * put once it holds about `targetBytes`. A caller that waits for its chunks to be stored
 * (a file's entry goes into a manifest only then) must not wait for a pack nothing will fill.
 * The rule: a pack not full is stored as soon as no PackFeed is open. A feed stands for
 * chunks still to come that may fill it; it always ends, since adding waits for nothing but
 * the puts of packs already sealed. Dedup mode holds one feed while files are read, and reads
 * the next file while one waits for its pack (storeEachFile's readAll): a stream of small
 * files fills whole packs, and the last, partly filled, goes once every file is read. Chunks
 * added with no feed open (sendOwed, which does not wait per chunk) rely on a full pack or
 * flush().
 */
export class PackWriter {
  private open: OpenPack | undefined;
  /** Packs sealed whose put has not settled. */
  private readonly storing = new Set<Promise<void>>();
  private wakeAdders: (() => void)[] = [];
  /** Feeds not ended yet. */
  private openFeeds = 0;
  /** Bytes a pack is filled to. */
  readonly targetBytes: number;
  /**
   * Buffers of packs the store has done with (Part.release), for the next packs. A fresh
   * 8 MiB buffer per pack had the main thread spend a fifth of a 2 GiB sync in the garbage
   * collector (external memory counted against the heap) and its copies in first-touch page
   * faults (sync-memory, 2 GiB: 1.55 s of GC and 0.62 s of copies in 7.3 s).
   */
  private readonly spare: Buffer[] = [];

  constructor(private readonly options: PackWriterOptions) {
    this.targetBytes = options.targetBytes ?? PACK_TARGET_BYTES;
  }

  /** Chunks still to come: a pack not full is not stored while a feed is open. */
  feed(): PackFeed {
    this.openFeeds += 1;
    return new PackFeed(this);
  }

  /**
   * Copies the chunk, `pieces` back to back, into the open pack (sealing it first when it does
   * not fit, waiting while `maxInFlight` packs are being stored); the caller may reuse the
   * pieces once this resolves. `crc32`: the chunk's, which the pack's checksum is joined from.
   */
  async add(sha256: string, pieces: readonly Buffer[], crc32: number): Promise<PackedChunk> {
    let size = 0;
    for (const piece of pieces) size += piece.length;
    for (;;) {
      this.options.signal.throwIfAborted();
      if (this.open && this.open.filled + size > this.open.bytes.length) this.seal(this.open);
      if (this.open) break;
      if (this.storing.size < this.options.maxInFlight) {
        this.open = openPack(size > this.targetBytes ? Buffer.allocUnsafe(size) : (this.spare.pop() ?? Buffer.allocUnsafe(this.targetBytes)));
        break;
      }
      await this.aPackStored();
    }
    const pack = this.open;
    const offset = pack.filled;
    for (const piece of pieces) pack.filled += piece.copy(pack.bytes, pack.filled);
    pack.crc32 = crc32Combine(pack.crc32, crc32, size);
    return { chunk: [sha256, size, pack.id, offset], stored: pack.stored };
  }

  /**
   * Stores `view` as a pack of its own, without copying: `chunks` lie in it back to back (a run
   * of new chunks in a part the reading thread filled). Waits while `maxInFlight` packs are
   * being stored. `release` is called once the pack is stored; a pack that failed is not
   * handed back (the caller's memory is dropped, never reused while a request may hold it).
   */
  async addView(chunks: readonly { sha256: string; size: number; crc32: number }[], view: Buffer, release: () => void): Promise<PackedChunk[]> {
    while (this.storing.size >= this.options.maxInFlight) {
      this.options.signal.throwIfAborted();
      await this.aPackStored();
    }
    this.options.signal.throwIfAborted();
    const pack = openPack(view);
    pack.filled = view.length;
    let offset = 0;
    const packed = chunks.map(({ sha256, size, crc32 }): PackedChunk => {
      const chunk: StoredChunk = [sha256, size, pack.id, offset];
      offset += size;
      pack.crc32 = crc32Combine(pack.crc32, crc32, size);
      return { chunk, stored: pack.stored };
    });
    this.seal(pack, { afterStored: release });
    return packed;
  }

  /** Resolves once the next pack being stored is stored or failed: room for another. */
  private aPackStored(): Promise<void> {
    return new Promise<void>((resolve) => this.wakeAdders.push(resolve));
  }

  /** Stores the open pack; resolves once every pack sealed so far is stored or failed. */
  async flush(): Promise<void> {
    if (this.open) this.seal(this.open);
    await Promise.allSettled(this.storing);
  }

  /** A feed added all its chunks: the open pack is sealed once no feed is open. */
  ended(): void {
    this.openFeeds -= 1;
    if (this.openFeeds === 0 && this.open) this.seal(this.open);
  }

  /** `view.afterStored`: the pack is a caller's memory (addView), handed back once stored; otherwise its buffer is kept for the next packs. */
  private seal(pack: OpenPack, view?: { afterStored: () => void }): void {
    if (!view) this.open = undefined;
    const { store, location, signal, onBytes } = this.options;
    const filled = { bytes: pack.bytes.subarray(0, pack.filled), crc32: pack.crc32 };
    const release = () => {
      if (pack.bytes.length === this.targetBytes && this.spare.length <= this.options.maxInFlight) this.spare.push(pack.bytes);
    };
    const put = store.put(keyFor(location, packName(pack.id)), [view ? filled : { ...filled, release }], { ...(onBytes ? { onBytes } : {}), signal });
    const settled = put.then(() => {
      view?.afterStored();
      pack.settle.resolve();
    }, pack.settle.reject).finally(() => {
      this.storing.delete(settled);
      const waiting = this.wakeAdders;
      this.wakeAdders = [];
      for (const wake of waiting) wake();
    });
    this.storing.add(settled);
  }
}

/** Chunks still to come (a file's, or a whole snapshot's); end() once the last is added, or the open pack waits for it. */
export class PackFeed {
  private ended = false;

  constructor(private readonly writer: PackWriter) {}

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.writer.ended();
  }
}

function openPack(bytes: Buffer): OpenPack {
  let settle!: OpenPack['settle'];
  const stored = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // Each chunk's owner awaits it; a pack whose chunks nobody awaits must not fail unhandled.
  stored.catch(() => undefined);
  return { id: newPackId(), bytes, filled: 0, crc32: 0, stored, settle };
}
