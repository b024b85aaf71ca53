import type { StoreLocation } from '../../stores/location.js';
import type { ObjectStore } from '../../stores/types.js';
import { ChunkRefused } from '../chunk-sender.js';
import type { StoredChunk } from '../manifest.js';
import { PackWriter } from '../pack-writer.js';
import type { TransferProgress } from '../progress.js';
import type { FileReader } from '../read.js';
import { owedChunks, type OwedChunk, type ScanPlan } from '../scan-plan.js';
import { uploadFailure } from '../upload.js';
import type { Skipped } from '../walk.js';

export interface OwedJob {
  /** In the order their chunks go (newest file first). */
  plans: readonly ScanPlan[];
  reader: FileReader;
  store: ObjectStore;
  location: StoreLocation;
  stop: AbortSignal;
  progress: TransferProgress;
  /** Says why a chunk of this size should not be sent now (the deadline), or undefined. */
  gate: (size: number) => string | undefined;
  /** Resolves once `bytes` may be sent (the sync's cap); none at a notice. */
  pace?: (bytes: number) => Promise<void>;
  /** Chunks read at once, and packs stored at once. */
  concurrency: number;
  /** Bytes a pack is filled to; PACK_TARGET_BYTES when undefined. */
  packBytes?: number;
}

export interface OwedOutcome {
  /** Plans that owe nothing now: their files are stored (planEntry). */
  done: ScanPlan[];
  /** Plans whose file is no longer as scanned (a range that cannot be read, or whose SHA-256 differs): read it whole again. */
  broken: ScanPlan[];
  /** Plans a chunk of which could not be sent (the deadline, the store): they stay, owing it. */
  skipped: Skipped[];
  /** Bytes read again: the owed ranges only. */
  bytesRead: number;
}

/** The file is not as scanned: nothing more of it is read. */
class ScanBroken extends Error {}

/**
 * Sends the chunks plans owe: reads just each chunk's byte range again (FileReader.readRange:
 * off the event loop, the walked file only, refused once its size or mtime moved), checks the
 * range still hashes to the chunk's name, and copies it into a pack (PackWriter). A range
 * that does not means the file changed under the same size and mtime: the plan is broken and
 * its chunk never stored under a name its bytes do not have. Once a chunk's pack is stored,
 * the plan's entry names it there and no longer owes it. At most `concurrency` ranges and
 * `concurrency` packs are in memory at once; the last pack is stored at the end (flush).
 */
export async function sendOwed(job: OwedJob): Promise<OwedOutcome> {
  const tasks = job.plans.flatMap((plan) => owedChunks(plan).map((chunk) => ({ plan, chunk })));
  const broken = new Set<ScanPlan>();
  const failed = new Map<ScanPlan, string>();
  let bytesRead = 0;
  let next = 0;
  const packs = new PackWriter({ store: job.store, location: job.location, signal: job.stop, onBytes: job.progress.add, maxInFlight: job.concurrency, targetBytes: job.packBytes });
  /** Chunks sent by this call, by SHA-256 (a file may owe one chunk at several offsets): where each will be once stored. */
  const sending = new Map<string, Promise<StoredChunk>>();
  const storing: Promise<void>[] = [];

  /** Resolves once the chunk is in a pack (not yet stored); `stored` resolves to its location once stored. */
  const send = async (plan: ScanPlan, chunk: OwedChunk): Promise<{ stored: Promise<StoredChunk> }> => {
    const range = await job.reader.readRange(plan.file, chunk.offset, chunk.size).catch(() => {
      throw new ScanBroken();
    });
    bytesRead += chunk.size;
    if (range.sha256 !== chunk.sha256) throw new ScanBroken();
    const already = sending.get(chunk.sha256);
    if (already) return { stored: already };
    const refusal = job.gate(chunk.size);
    if (refusal) throw new ChunkRefused(refusal);
    await job.pace?.(chunk.size);
    const packed = await packs.add(chunk.sha256, [range.bytes], range.crc32);
    const stored = packed.stored.then(() => packed.chunk);
    // A failed pack may be sent again for the next plan that owes its chunk.
    stored.catch(() => sending.delete(chunk.sha256));
    sending.set(chunk.sha256, stored);
    return { stored };
  };
  const failure = (plan: ScanPlan, error: unknown) => {
    if (error instanceof ScanBroken) broken.add(plan);
    else failed.set(plan, error instanceof ChunkRefused ? error.message : uploadFailure(job.stop, error));
  };

  const worker = async () => {
    while (next < tasks.length) {
      const { plan, chunk } = tasks[next++]!;
      if (broken.has(plan) || failed.has(plan)) continue;
      if (job.stop.aborted) {
        failed.set(plan, 'not started: the deadline was reached');
        continue;
      }
      try {
        const { stored } = await send(plan, chunk);
        storing.push(
          stored.then((located) => {
            plan.entry.chunks![chunk.index] = located;
            plan.owed.delete(chunk.index);
          }, (error: unknown) => failure(plan, error)),
        );
      } catch (error) {
        failure(plan, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(job.concurrency, tasks.length)) }, worker));
  await packs.flush();
  await Promise.all(storing);

  return {
    done: job.plans.filter((plan) => !broken.has(plan) && plan.owed.size === 0),
    broken: [...broken],
    skipped: [...failed].filter(([plan]) => !broken.has(plan)).map(([plan, reason]) => ({ path: plan.file.source, reason })),
    bytesRead,
  };
}
