import type { StoredChunk } from './manifest.js';
import { ChunkRefused, ChunkSender, type CutChunk, type PartHolder, type Run } from './chunk-sender.js';
import { PackWriter } from './pack-writer.js';
import type { ReadPart } from './read.js';
import type { ScanPlan } from './scan-plan.js';
import { manifestChunks, readLatest } from './repository.js';
import { storedFile, storeEachFile, uploadFailure, type UploadJob, type UploadOutcome } from './upload.js';

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
  const held: { bytes: Buffer; holder: PartHolder; done: () => void }[] = [];
  const run: Run = { sending: [], letGo: undefined };
  try {
    for await (const part of parts) {
      const holder = partHolder(part);
      const done = holder.hold();
      let at = 0;
      const chunks: CutChunk[] = [];
      for (const [sha256, size, crc32] of part.chunks ?? []) {
        // A chunk takes the held bytes first (it may lie wholly among them), then this part's;
        // each piece from another part, so a chunk of one piece lies in one part (`only`'s).
        const pieces: Buffer[] = [];
        let only: PartHolder | undefined;
        let wanted = size;
        for (const end of held) {
          if (wanted === 0) break;
          const piece = end.bytes.subarray(0, wanted);
          if (piece.length === 0) continue;
          pieces.push(piece);
          only = end.holder;
          wanted -= piece.length;
          end.bytes = end.bytes.subarray(piece.length);
        }
        if (wanted > 0) {
          pieces.push(part.bytes.subarray(at, at + wanted));
          only = holder;
          at += wanted;
        }
        chunks.push({ sha256, size, crc32, pieces, holder: pieces.length === 1 ? only : undefined });
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
