import type { StoredChunk } from './manifest.js';
import { PackWriter } from './pack-writer.js';
import type { ReadPart } from './read.js';
import type { ScanPlan } from './scan-plan.js';
import { manifestChunks, readLatest } from './repository.js';
import { storedFile, storeEachFile, uploadFailure, type UploadJob, type UploadOutcome } from './upload.js';

/** A chunk the deadline gate would not start: the file it belongs to is skipped. */
class ChunkRefused extends Error {}

/**
 * Stores each chunk once. A chunk `known` names (the previous complete manifest's, a sync's
 * record) is named again where it is, with no request; any other is copied into a pack
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
   * Resolves once the chunk is accepted: `pieces` (its bytes in order) have been copied into
   * a pack, if it is sent, and may be reused. `stored` settles with the chunk's location once
   * its pack is stored, or undefined when owed (the cap did not allow it now, see
   * UploadJob.sendNow).
   */
  async offer(sha256: string, size: number, pieces: readonly Buffer[]): Promise<{ stored: Promise<StoredChunk | undefined> }> {
    const known = this.known.get(sha256);
    if (known) return { stored: Promise.resolve(known) };
    const already = this.sending.get(sha256);
    if (already) return { stored: already };
    const refusal = this.job.gate(size);
    if (refusal) return { stored: Promise.reject(new ChunkRefused(refusal)) };
    if (this.job.sendNow && !this.job.sendNow(size)) {
      const owed = Promise.resolve(undefined);
      this.sending.set(sha256, owed);
      return { stored: owed };
    }
    const adding = this.packs.add(sha256, pieces);
    const stored = adding.then(({ chunk, stored }) => stored.then(() => chunk));
    // A failed chunk may be tried again by another file that has it.
    stored.catch(() => this.sending.delete(sha256));
    this.sending.set(sha256, stored);
    await adding;
    return { stored };
  }
}

/**
 * Offers each chunk of a file to `sender`, as the reading thread cut and hashed them (parts
 * read with `chunks`). A chunk is copied into its pack straight from the parts' memory: a part
 * whose end no chunk has taken yet is held (not copied) until the next part's chunks take it,
 * then goes back to the reader. Copying each chunk out first had the main thread spend a
 * quarter of its time in Buffer.concat and the garbage collector (2 GiB chunking bench);
 * copying only the ends and the chunks across them still allocated a quarter of the bytes
 * read (sync-memory, 2 GiB: 515 MB). Resolves to the file's chunks, located, once every chunk
 * is stored or owed, with the indexes of those owed (bare `[sha256, size]` in the list).
 * `readAll` is called once every chunk is offered: the next file may start.
 */
async function storeChunks(parts: AsyncIterable<ReadPart>, sender: ChunkSender, readAll: () => void): Promise<{ refs: StoredChunk[]; owed: number[] }> {
  const refs: StoredChunk[] = [];
  const stored: Promise<StoredChunk | undefined>[] = [];
  /** Ends of earlier parts that no chunk has taken yet, oldest first, with their parts held. */
  let held: { bytes: Buffer; part: ReadPart }[] = [];
  try {
    for await (const part of parts) {
      let at = 0;
      for (const [sha256, size] of part.chunks ?? []) {
        // A chunk takes the held bytes first (it may lie wholly among them), then this part's.
        const pieces: Buffer[] = [];
        let wanted = size;
        for (const end of held) {
          if (wanted === 0) break;
          const piece = end.bytes.subarray(0, wanted);
          pieces.push(piece);
          wanted -= piece.length;
          end.bytes = end.bytes.subarray(piece.length);
        }
        if (wanted > 0) {
          pieces.push(part.bytes.subarray(at, at + wanted));
          at += wanted;
        }
        const offered = await sender.offer(sha256, size, pieces);
        // Awaited below; a failure must not go unhandled while later chunks are offered.
        offered.stored.catch(() => undefined);
        stored.push(offered.stored);
        refs.push([sha256, size]);
        // The pieces are copied once offer returns: parts wholly taken go back to the reader.
        while (held.length > 0 && held[0]!.bytes.length === 0) held.shift()!.part.release?.();
      }
      if (at < part.bytes.length) held.push({ bytes: part.bytes.subarray(at), part });
      else part.release?.();
    }
  } finally {
    for (const { part } of held) part.release?.();
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
