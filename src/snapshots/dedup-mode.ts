import { keyFor } from '../stores/location.js';
import { onePart } from '../stores/parts.js';
import type { ChunkRef, ReadPart } from './read.js';
import type { ScanPlan } from './scan-plan.js';
import { chunkName, manifestChunks, readLatest, storedChunkUsable } from './repository.js';
import { storedFile, storeEachFile, uploadFailure, type UploadJob, type UploadOutcome } from './upload.js';

/** A chunk the deadline gate would not start: the file it belongs to is skipped. */
class ChunkRefused extends Error {}

/**
 * Stores each chunk once. Chunks named by the previous complete manifest are known stored;
 * any other is looked for with one HEAD (an earlier cut snapshot may have stored it) and
 * uploaded when missing or too old to rely on (storedChunkUsable), gated by the deadline. At most `limit` chunks are in flight: the
 * caller waits for a slot, which bounds the memory chunks hold.
 */
class ChunkSender {
  private inFlight = 0;
  private readonly slots: (() => void)[] = [];
  /** Chunks stored or being stored by this snapshot (two files may share one); false: owed. */
  private readonly sending = new Map<string, Promise<boolean>>();
  private readonly startedAt = Date.now();

  constructor(
    private readonly job: UploadJob,
    private readonly known: ReadonlySet<string>,
    private readonly limit: number,
  ) {}

  /**
   * Resolves once the chunk is accepted; `stored` settles when it is in the store (true) or
   * owed (false: the cap did not allow it now, see UploadJob.sendNow). `bytes` gives the
   * chunk's bytes, which must stay untouched until `stored` settles; it is called (before
   * this resolves) only for a chunk to be sent.
   */
  async offer(sha256: string, bytes: () => Buffer): Promise<{ stored: Promise<boolean> }> {
    if (this.known.has(sha256)) return { stored: Promise.resolve(true) };
    while (this.inFlight >= this.limit) await new Promise<void>((resolve) => this.slots.push(resolve));
    const already = this.sending.get(sha256);
    if (already) return { stored: already };
    this.inFlight += 1;
    const stored = this.store(sha256, bytes()).finally(() => {
      this.inFlight -= 1;
      this.slots.shift()?.();
    });
    // A failed chunk may be tried again by another file that has it.
    stored.catch(() => this.sending.delete(sha256));
    this.sending.set(sha256, stored);
    return { stored };
  }

  private async store(sha256: string, bytes: Buffer): Promise<boolean> {
    const { store, location, progress, stop } = this.job;
    const key = keyFor(location, chunkName(sha256));
    if (await storedChunkUsable(store, key, this.startedAt)) return true;
    const refusal = this.job.gate(bytes.length);
    if (refusal) throw new ChunkRefused(refusal);
    if (this.job.sendNow && !this.job.sendNow(bytes.length)) return false;
    await store.put(key, onePart(bytes), { onBytes: progress.add, signal: stop });
    return true;
  }
}

/**
 * Offers each chunk of a file to `sender`, as the reading thread cut and hashed them (parts
 * read with `chunks`). A chunk wholly inside a part is sent from the part's memory, and the
 * part goes back to the reader once those chunks are stored: no copy, no garbage (copying
 * each chunk out had the main thread spend a quarter of its time in Buffer.concat and the
 * garbage collector, on the 2 GiB chunking bench). A chunk that spans parts is copied: the
 * unfinished end of each part is kept, copied, for the next one. Resolves to the file's chunk
 * list once every chunk is stored or owed, with the indexes of those owed.
 */
async function storeChunks(parts: AsyncIterable<ReadPart>, sender: ChunkSender): Promise<{ refs: ChunkRef[]; owed: number[] }> {
  const refs: ChunkRef[] = [];
  const stored: Promise<boolean>[] = [];
  /** A copy of the bytes from earlier parts that no chunk has taken yet. */
  let begun = Buffer.alloc(0);
  try {
    for await (const part of parts) {
      let at = 0;
      const fromPart: Promise<boolean>[] = [];
      for (const [sha256, size] of part.chunks ?? []) {
        // A chunk takes the bytes begun in earlier parts first (it may lie wholly among them).
        const earlier = begun.subarray(0, size);
        begun = begun.subarray(earlier.length);
        const here = part.bytes.subarray(at, at + size - earlier.length);
        at += here.length;
        const offered = await sender.offer(sha256, () => (earlier.length ? Buffer.concat([earlier, here]) : here));
        // Awaited below; a failure must not go unhandled while later chunks are offered.
        offered.stored.catch(() => undefined);
        stored.push(offered.stored);
        if (!earlier.length) fromPart.push(offered.stored);
        refs.push([sha256, size]);
      }
      if (at < part.bytes.length) begun = Buffer.concat([begun, part.bytes.subarray(at)]);
      void Promise.allSettled(fromPart).then(() => part.release?.());
    }
  } finally {
    await Promise.allSettled(stored);
  }
  const sent = await Promise.all(stored);
  return { refs, owed: sent.flatMap((done, index) => (done ? [] : [index])) };
}

/**
 * Dedup mode: every file is read once, cut into content-defined chunks (chunker.ts) and
 * hashed on the reading threads; only chunks the repository does not hold are uploaded, in the files' priority
 * order. A file is in the manifest once all its chunks are stored; the chunks of a file the
 * deadline cut stay stored, and the next snapshot will not send them again. In a background
 * pass (`sendNow`), a file whose chunks the cap held back comes back as a plan (ScanPlan).
 */
export async function uploadDeduplicated(job: UploadJob): Promise<UploadOutcome> {
  const { stop } = job;
  const previous = await readLatest(job.store, job.location);
  const known = new Set(previous ? manifestChunks(previous.manifest).keys() : []);
  for (const sha256 of job.knownChunks ?? []) known.add(sha256);
  const sender = new ChunkSender(job, known, job.concurrency * job.queueSize);
  const planned: ScanPlan[] = [];
  const scannedAt = Date.now();
  const outcome = await storeEachFile(job, {
    refuse: () => (stop.aborted ? 'not started: the deadline was reached' : undefined),
    async store(file, read) {
      const { refs, owed } = await storeChunks(read.parts, sender);
      const entry = { ...storedFile(file, await read.result(), job.checksum), chunks: refs };
      if (owed.length === 0) return entry;
      // Changed while read: a plan of it would not hold; the next pass reads it again.
      if (!entry.changed) planned.push({ file, entry, owed: new Set(owed), scannedAt });
      return undefined;
    },
    failure: (error) => (error instanceof ChunkRefused ? error.message : uploadFailure(stop, error)),
    chunks: true,
  });
  return planned.length ? { ...outcome, planned } : outcome;
}
