import type { StoredChunk } from './manifest.js';
import type { PackWriter } from './pack-writer.js';
import type { UploadJob } from './upload.js';

/** A chunk the deadline gate would not start: the file it belongs to is skipped. */
export class ChunkRefused extends Error {}

/** A part's memory that chunks are taken from: hold() keeps it from the reader until the returned function is called. */
export interface PartHolder {
  hold(): () => void;
}

/** A chunk as cut: its bytes as pieces of the parts' memory, in order, and the part they lie in when they are one piece. */
export interface CutChunk {
  sha256: string;
  size: number;
  crc32: number;
  pieces: readonly Buffer[];
  holder: PartHolder | undefined;
}

/** A chunk to be sent, with the promise `sending` holds for it. */
interface Sending {
  chunk: CutChunk;
  resolve: (stored: StoredChunk) => void;
  reject: (error: unknown) => void;
}

/** A file's chunks to be sent that lie back to back in one part, not in a pack yet; `letGo` ends the hold they keep on it. */
export interface Run {
  sending: Sending[];
  letGo: (() => void) | undefined;
}

/**
 * Runs of new chunks back to back in one part of at least this many bytes (or the pack size,
 * if smaller) are stored as packs of their own straight from the part's memory: copying every
 * chunk into a pack cost the 2 GiB sync's main thread 0.22 CPU-s per GB. Shorter runs (a
 * re-sync's scattered changes) are copied into the open pack, so they do not make small objects.
 */
const VIEW_PACK_MIN_BYTES = 1024 * 1024;

/**
 * Stores each chunk once. A chunk `known` names (the previous complete manifest's, a sync's
 * record) is named again where it is, with no request; any other goes into a pack
 * (PackWriter), gated by the deadline. A chunk an earlier cut snapshot stored in a pack no
 * manifest names is not looked for: it is sent again, and prune removes the unnamed pack.
 */
export class ChunkSender {
  /** Chunks stored or being stored by this snapshot (two files may share one); undefined: owed. */
  private readonly sending = new Map<string, Promise<StoredChunk | undefined>>();

  constructor(
    private readonly job: UploadJob,
    private readonly known: ReadonlyMap<string, StoredChunk>,
    private readonly packs: PackWriter,
  ) {}

  /**
   * Offers `chunks` in order; resolves, once every piece is copied into a pack, held by one or
   * kept in `run` (which holds its part), to a promise for each chunk that settles with its
   * location once its pack is stored, or undefined when owed (the cap did not allow it now,
   * see UploadJob.sendNow). `run` carries a file's chunks to be sent that lie back to back in
   * one part from one call to the next (a part's last chunks are cut with the next part), so a
   * part's new chunks make one pack; flush() it after the file's last chunks.
   */
  async offer(chunks: readonly CutChunk[], run: Run): Promise<Promise<StoredChunk | undefined>[]> {
    const outcomes: Promise<StoredChunk | undefined>[] = [];
    const pending: Sending[] = [];
    try {
      for (const chunk of chunks) {
        const decided = this.decide(chunk);
        if (!('resolve' in decided)) {
          await this.flush(run);
          outcomes.push(decided);
          continue;
        }
        pending.push(decided);
        outcomes.push(this.sending.get(chunk.sha256)!);
        if (!backToBack(run.sending.at(-1)?.chunk, chunk)) await this.flush(run);
        if (!chunk.holder) {
          await this.copy([decided]);
          continue;
        }
        if (run.sending.length === 0) run.letGo = chunk.holder.hold();
        run.sending.push(decided);
      }
    } catch (error) {
      // Not sent (the deadline stopped the packs): nothing may wait for these for ever.
      for (const one of [...pending, ...run.sending]) one.reject(error);
      run.sending = [];
      run.letGo?.();
      run.letGo = undefined;
      throw error;
    }
    return outcomes;
  }

  /**
   * Sends the chunks `run` holds: packs of their own straight from their part's memory when
   * they are VIEW_PACK_MIN_BYTES or more (or the pack size, if smaller), else copied into the
   * open pack. Any failure rejects the chunks not sent.
   */
  async flush(run: Run): Promise<void> {
    const chunks = run.sending;
    const letGo = run.letGo;
    run.sending = [];
    run.letGo = undefined;
    if (chunks.length === 0) return;
    let from = 0;
    try {
      const bytes = chunks.reduce((sum, { chunk }) => sum + chunk.size, 0);
      const target = this.packs.targetBytes;
      if (bytes < Math.min(target, VIEW_PACK_MIN_BYTES)) {
        await this.copy(chunks);
        from = chunks.length;
      }
      while (from < chunks.length) {
        let to = from + 1;
        let size = chunks[from]!.chunk.size;
        while (to < chunks.length && size + chunks[to]!.chunk.size <= target) size += chunks[to++]!.chunk.size;
        const group = chunks.slice(from, to);
        const first = group[0]!.chunk.pieces[0]!;
        const view = Buffer.from(first.buffer, first.byteOffset, size);
        const packed = await this.packs.addView(
          group.map(({ chunk }) => chunk),
          view,
          group[0]!.chunk.holder!.hold(),
        );
        packed.forEach(({ chunk, stored }, index) => stored.then(() => group[index]!.resolve(chunk), group[index]!.reject));
        from = to;
      }
    } catch (error) {
      for (const one of chunks.slice(from)) one.reject(error);
      throw error;
    } finally {
      letGo?.();
    }
  }

  /** What becomes of a chunk: its location or promise, or a Sending (registered in `sending`) when it is to be sent now. */
  private decide(chunk: CutChunk): Promise<StoredChunk | undefined> | Sending {
    const { sha256, size } = chunk;
    const known = this.known.get(sha256);
    if (known) return Promise.resolve(known);
    const already = this.sending.get(sha256);
    if (already) return already;
    const refusal = this.job.gate(size);
    if (refusal) return Promise.reject(new ChunkRefused(refusal));
    if (this.job.sendNow && !this.job.sendNow(size)) {
      const owed = Promise.resolve(undefined);
      this.sending.set(sha256, owed);
      return owed;
    }
    let settle!: Pick<Sending, 'resolve' | 'reject'>;
    const stored = new Promise<StoredChunk>((resolve, reject) => (settle = { resolve, reject }));
    // A failed chunk may be tried again by another file that has it.
    stored.catch(() => this.sending.delete(sha256));
    this.sending.set(sha256, stored);
    return { chunk, ...settle };
  }

  /** Copies each chunk into the open pack. */
  private async copy(chunks: readonly Sending[]): Promise<void> {
    for (const { chunk, resolve, reject } of chunks) {
      const packed = await this.packs.add(chunk.sha256, chunk.pieces, chunk.crc32);
      packed.stored.then(() => resolve(packed.chunk), reject);
    }
  }
}

/** Whether `next` lies right after `previous` in the same part's memory. */
function backToBack(previous: CutChunk | undefined, next: CutChunk): boolean {
  if (!previous?.holder || previous.holder !== next.holder) return false;
  const last = previous.pieces[0]!;
  const first = next.pieces[0]!;
  return first.buffer === last.buffer && first.byteOffset === last.byteOffset + last.length;
}
