import type { StoreLocation } from '../../stores/location.js';
import type { ObjectStore } from '../../stores/types.js';
import { uploadDeduplicated } from '../dedup-mode.js';
import type { TransferProgress } from '../progress.js';
import type { StoredChunk } from '../manifest.js';
import type { FileReader } from '../read.js';
import { PACK_TARGET_BYTES } from '../repository.js';
import type { ScanPlan } from '../scan-plan.js';
import type { UploadOutcome } from '../upload.js';
import type { FoundEntry } from '../walk.js';
import { sendOwed, type OwedOutcome } from './owed.js';
import type { TokenBucket } from './token-bucket.js';

export const FILES_IN_FLIGHT = 2;
/**
 * Packs being stored per file in flight: with FILES_IN_FLIGHT, 4 packs (32 MiB) at once. A
 * sync runs beside the workload and is not racing a deadline; 8 held 32 MiB more at its peak
 * for no more speed on loopback (sync-memory, 10 GiB).
 */
export const PACKS_IN_FLIGHT_PER_FILE = 2;
/**
 * Parts a sync reads files in. Each file in flight holds about three (the one being cut, the
 * next, and one whose end waits for the next part's chunks), and each pack being stored holds
 * the part its chunks lie in (dedup-mode.ts: packs straight from the parts' memory), so a pack
 * of new chunks is about a part. sync-memory, 10 GiB: 4 MiB parts 259 MiB peak at 1.82 CPU-s
 * per GB; 6 MiB 275-279 MiB at 1.71-1.79; 8 MiB 285 MiB at 1.66, too near the 300 MB goal.
 */
export const PART_SIZE = 4 * 1024 * 1024;
/** The smallest pack a capped pass fills to: a few PUTs a second at the lowest caps. */
const MIN_PACK_BYTES = 256 * 1024;

/** What a background pass reads and sends with. */
export interface PassIO {
  store: ObjectStore;
  location: StoreLocation;
  /** Its threads run at nice 19. */
  reader: FileReader;
  bucket: TokenBucket;
  signal: AbortSignal;
}

/**
 * Reads each file to its end (reading is local: it does not wait for the cap), cutting and
 * hashing it; a new chunk is sent at once when the cap allows it now, otherwise it is owed,
 * not kept: the file comes back as a plan (outcome.planned). With no cap every chunk goes at
 * once, so each byte is read once.
 */
export function scanFiles(entries: FoundEntry[], knownChunks: ReadonlyMap<string, StoredChunk>, progress: TransferProgress, io: PassIO): Promise<UploadOutcome> {
  return thenCleanUp(io, () =>
    uploadDeduplicated({
      entries,
      store: io.store,
      location: io.location,
      stop: io.signal,
      progress,
      // No deadline while healthy: every complete file is stored.
      gate: () => undefined,
      concurrency: FILES_IN_FLIGHT,
      partSize: PART_SIZE,
      queueSize: PACKS_IN_FLIGHT_PER_FILE,
      reader: io.reader,
      checksum: 'crc32',
      knownChunks,
      sendNow: (bytes) => io.bucket.takeNow(bytes),
      packBytes: packBytes(io.bucket),
    }),
  );
}

/**
 * What a pass fills a pack to: half a second of the cap at most. The cap is taken as chunks
 * go into a pack, but a pack goes to the store at once, so a pack of 8 MiB at 1 MB/s put
 * two-thirds more than the cap into some 10 s windows; half a second of it keeps any window
 * within 5 % (the token bucket's own bound).
 */
function packBytes(bucket: TokenBucket): number {
  const cap = bucket.cap;
  return cap === null ? PACK_TARGET_BYTES : Math.min(PACK_TARGET_BYTES, Math.max(MIN_PACK_BYTES, Math.round(cap / 2)));
}

/** Sends what `plans` owe, in their order, at the cap's pace (range reads: sendOwed). */
export function payOwed(plans: readonly ScanPlan[], progress: TransferProgress, io: PassIO): Promise<OwedOutcome> {
  const { store, location, reader, signal } = io;
  return thenCleanUp(io, () => sendOwed({ plans, reader, store, location, stop: signal, progress, gate: () => undefined, pace: (bytes) => io.bucket.take(bytes, signal), concurrency: FILES_IN_FLIGHT, packBytes: packBytes(io.bucket) }));
}

/**
 * Runs `work`, then removes what its failed or stopped puts left (file://'s `.partial` files,
 * S3's open multipart uploads): a pass a notice takes over stops in the middle of its puts.
 * Every put has settled once `work` has. What cannot be removed now is a prune's to remove
 * (leftovers older than its grace).
 */
async function thenCleanUp<T>(io: PassIO, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    await io.store.cleanup().catch(() => undefined);
  }
}
