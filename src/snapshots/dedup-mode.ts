import type { StoredChunk } from './manifest.js';
import { PackWriter } from './pack-writer.js';
import type { ReadPart } from './read.js';
import type { ScanPlan } from './scan-plan.js';
import { manifestChunks, readLatest } from './repository.js';
import { storedFile, storeEachFile, uploadFailure, type UploadJob, type UploadOutcome } from './upload.js';

/** A chunk the deadline gate would not start: the file it belongs to is skipped. */
class ChunkRefused extends Error {}

/** A part's memory that chunks are taken from: hold() keeps it from the reader until the returned function is called. */
interface PartHolder {
  hold(): () => void;
}

/** A chunk as cut: its bytes as pieces of the parts' memory, in order, and the part they lie in when they are one piece. */
interface CutChunk {
  sha256: string;
  size: number;
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
interface Run {
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
class ChunkSender {
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
      const packed = await this.packs.add(chunk.sha256, chunk.pieces);
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

/**
 * Offers each chunk of a file to `sender`, as the reading thread cut and hashed them (parts
 * read with `chunks`), as pieces of the parts' memory: a part whose end no chunk has taken yet
 * is held (not copied) until the next part's chunks take it, and a part goes back to the reader
 * once no chunk and no pack needs it. Copying each chunk out first had the main thread spend a
 * quarter of its time in Buffer.concat and the garbage collector (2 GiB chunking bench);
 * copying only the ends and the chunks across them still allocated a quarter of the bytes
 * read (sync-memory, 2 GiB: 515 MB). Resolves to the file's chunks, located, once every chunk
 * is stored or owed, with the indexes of those owed (bare `[sha256, size]` in the list).
 * `readAll` is called once every chunk is offered: the next file may start.
 */
async function storeChunks(parts: AsyncIterable<ReadPart>, sender: ChunkSender, readAll: () => void): Promise<{ refs: StoredChunk[]; owed: number[] }> {
  const refs: StoredChunk[] = [];
  const stored: Promise<StoredChunk | undefined>[] = [];
  /** Ends of earlier parts that no chunk has taken yet, oldest first; `done` lets go of the part. */
  let held: { bytes: Buffer; holder: PartHolder; done: () => void }[] = [];
  const run: Run = { sending: [], letGo: undefined };
  try {
    for await (const part of parts) {
      const holder = partHolder(part);
      const done = holder.hold();
      let at = 0;
      const chunks: CutChunk[] = [];
      for (const [sha256, size] of part.chunks ?? []) {
        // A chunk takes the held bytes first (it may lie wholly among them), then this part's.
        const pieces: Buffer[] = [];
        const holders = new Set<PartHolder>();
        let wanted = size;
        for (const end of held) {
          if (wanted === 0) break;
          const piece = end.bytes.subarray(0, wanted);
          if (piece.length === 0) continue;
          pieces.push(piece);
          holders.add(end.holder);
          wanted -= piece.length;
          end.bytes = end.bytes.subarray(piece.length);
        }
        if (wanted > 0) {
          pieces.push(part.bytes.subarray(at, at + wanted));
          holders.add(holder);
          at += wanted;
        }
        chunks.push({ sha256, size, pieces, holder: holders.size === 1 ? [...holders][0] : undefined });
        refs.push([sha256, size]);
      }
      const offered = await sender.offer(chunks, run);
      // Awaited below; a failure must not go unhandled while later chunks are offered.
      for (const one of offered) one.catch(() => undefined);
      stored.push(...offered);
      // Every piece is copied or held by its pack: parts wholly taken go back (once their packs are stored).
      while (held.length > 0 && held[0]!.bytes.length === 0) held.shift()!.done();
      if (at < part.bytes.length) held.push({ bytes: part.bytes.subarray(at), holder, done });
      else done();
    }
  } finally {
    // The file's last run goes now, whatever ended the file; a failure rejects its chunks.
    await sender.flush(run).catch(() => undefined);
    for (const { done } of held) done();
    held = [];
    // Every chunk is offered (or the file failed): the next file may fill the pack this one waits for.
    readAll();
    await Promise.allSettled(stored);
  }
  const located = await Promise.all(stored);
  const owed: number[] = [];
  located.forEach((chunk, index) => (chunk ? (refs[index] = chunk) : owed.push(index)));
  return { refs, owed };
}

/** Gives `part` back to the reader once every hold on it is let go. */
function partHolder(part: ReadPart): PartHolder {
  let holds = 0;
  return {
    hold() {
      holds += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        holds -= 1;
        if (holds === 0) part.release?.();
      };
    },
  };
}

/**
 * Dedup mode: every file is read once, cut into content-defined chunks (chunker.ts) and
 * hashed on the reading threads; only chunks the repository is not known to hold are uploaded,
 * in packs, in the files' priority order. A file is in the manifest once all its chunks are
 * stored, each named with its pack and offset; packs a cut snapshot stored are named by no
 * manifest (prune removes them after its grace). In a background pass (`sendNow`), a file
 * whose chunks the cap held back comes back as a plan (ScanPlan).
 */
export async function uploadDeduplicated(job: UploadJob): Promise<UploadOutcome> {
  const { stop } = job;
  const previous = await readLatest(job.store, job.location);
  const known = new Map(previous ? manifestChunks(previous.manifest) : []);
  for (const [sha256, chunk] of job.knownChunks ?? []) if (!known.has(sha256)) known.set(sha256, chunk);
  // As many packs in flight as files mode has parts: the same requests, bytes held the same.
  const packs = new PackWriter({ store: job.store, location: job.location, signal: stop, onBytes: job.progress.add, maxInFlight: job.concurrency * job.queueSize, targetBytes: job.packBytes });
  const sender = new ChunkSender(job, known, packs);
  const planned: ScanPlan[] = [];
  const scannedAt = Date.now();
  // Packs fill across files (the next file is read while one waits for its pack); the last
  // one is stored once every file is read.
  const reading = packs.feed();
  const outcome = await storeEachFile(job, {
    refuse: () => (stop.aborted ? 'not started: the deadline was reached' : undefined),
    async store(file, read, readAll) {
      const { refs, owed } = await storeChunks(read.parts, sender, readAll);
      const entry = { ...storedFile(file, await read.result(), job.checksum), chunks: refs };
      if (owed.length === 0) return entry;
      // Changed while read: a plan of it would not hold; the next pass reads it again.
      if (!entry.changed) planned.push({ file, entry, owed: new Set(owed), scannedAt });
      return undefined;
    },
    failure: (error) => (error instanceof ChunkRefused ? error.message : uploadFailure(stop, error)),
    chunks: true,
    allRead: () => reading.end(),
  }).finally(() => reading.end());
  await packs.flush();
  return planned.length ? { ...outcome, planned } : outcome;
}
