import { formatDuration } from '../lib/duration.js';
import { errorMessage } from '../lib/errors.js';
import type { ObjectStore } from '../stores/types.js';
import type { StoreLocation } from '../stores/location.js';
import type { ChecksumAlgorithm } from './options.js';
import { checksumField, type Manifest, type ManifestEntry, type ManifestFile, type StoredChunk } from './manifest.js';
import type { TransferProgress } from './progress.js';
import type { FileRead, FileReader, ReadResult } from './read.js';
import type { ScanPlan } from './scan-plan.js';
import type { FoundEntry, FoundFile, Skipped } from './walk.js';

/** What a mode (files, archive or dedup) gets to work with. */
export interface UploadJob {
  /** In priority order. */
  entries: FoundEntry[];
  store: ObjectStore;
  location: StoreLocation;
  /** Aborts at the cut-off: stop everything, keep what completed. */
  stop: AbortSignal;
  progress: TransferProgress;
  /** Says why a file of this size should not be started now, or undefined to go ahead. */
  gate: (size: number) => string | undefined;
  concurrency: number;
  /** The store's part size: the reader computes each part's CRC32 for it. */
  partSize: number;
  /** Parts of one object in flight (dedup mode: chunks in flight per file in flight). */
  queueSize: number;
  /** Reads files and computes their checksums on its own thread. */
  reader: FileReader;
  /** What the manifest gives each file. */
  checksum: ChecksumAlgorithm;
  /** Dedup mode: chunks known to be stored already, by SHA-256, where they are (a sync's record), besides the latest manifest's. */
  knownChunks?: ReadonlyMap<string, StoredChunk>;
  /**
   * Dedup mode, a background pass: whether a new chunk of `bytes` may be sent now (a sync's
   * bandwidth cap, never waited for). One it refuses is owed: its file is read to the end all
   * the same and comes back in `planned` instead of `files`.
   */
  sendNow?: (bytes: number) => boolean;
  /** Dedup mode: bytes a pack is filled to before it is stored; PACK_TARGET_BYTES unless a cap wants smaller. */
  packBytes?: number;
}

export interface UploadOutcome {
  files: ManifestEntry[];
  skipped: Skipped[];
  /** File bytes now safely stored. */
  bytesDone: number;
  archive: Manifest['archive'];
  /** Dedup mode with `sendNow`: files read to the end whose chunks are not all stored yet. */
  planned?: ScanPlan[];
}

/**
 * Decides whether to start a file: not after the cut-off, and not when, at the rate so far,
 * it could not be through before the cut-off behind the bytes already started. A refused
 * file does not stop the others: a smaller one further down may still fit.
 */
export function deadlineGate(stop: AbortSignal, cutoff: number, progress: TransferProgress): (size: number) => string | undefined {
  return (size) => {
    if (stop.aborted) return 'not started: the deadline was reached';
    const now = Date.now();
    const needs = progress.timeFor(progress.inFlight + size, now);
    if (needs !== undefined && now + needs > cutoff) {
      const rate = ((progress.rate(now) ?? 0) / 1e6).toFixed(1);
      return `not started: needs about ${formatDuration(needs)} at ${rate} MB/s, ${formatDuration(Math.max(0, cutoff - now))} left before the deadline`;
    }
    progress.begin(size, now);
    return undefined;
  };
}

/** The manifest entry of a file stored as `result` says. */
export function storedFile(entry: FoundFile, result: ReadResult, checksum: ChecksumAlgorithm): ManifestFile {
  return {
    type: 'file',
    path: entry.name,
    size: result.size,
    mtime: new Date(result.mtimeMs).toISOString(),
    mode: entry.mode,
    ...checksumField(checksum, result.checksum),
    ...(result.changed ? { changed: result.changed } : {}),
  };
}

export function describeRead(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'removed before it could be read';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  // The reader opens with O_NOFOLLOW and checks the file is the one walked (read-worker.ts).
  if (code === 'ELOOP') return 'replaced by a symlink after it was found: not followed';
  if (code === 'EREPLACED') return (error as Error).message;
  return `cannot read: ${code ?? (error as Error).message}`;
}

/** Why a file's upload failed: the deadline, or the store's error. */
export function uploadFailure(stop: AbortSignal, error: unknown): string {
  return stop.aborted ? 'cut by the deadline' : `upload failed: ${errorMessage(error)}`;
}

/** How a mode that stores each file on its own (files, dedup) treats one file. */
export interface EachFile {
  /** Why this file should not be started, or undefined to go ahead. */
  refuse(entry: FoundFile): string | undefined;
  /**
   * Stores the opened file; resolves to its manifest entry, or undefined when chunks are still
   * owed (a ScanPlan). Calling `readAll` lets the next file start while this one's bytes are
   * still being stored (dedup mode: a pack waits for the files still being read to fill it).
   */
  store(entry: FoundFile, read: FileRead, readAll: () => void): Promise<ManifestFile | undefined>;
  /** The skipped reason for a file whose store() failed. */
  failure(error: unknown): string;
  /** Dedup mode: the reading thread also cuts and hashes each file's chunks. */
  chunks?: boolean;
  /** Called once every file is read (or refused, or failed), before the stores still running are waited for. */
  allRead?: () => void;
}

/**
 * Takes the job's entries in priority order, `concurrency` files at a time: links go into the
 * manifest as links, a file refused or unreadable is skipped with the reason, and every other
 * file is opened (sizes may change while read) and handed to `each.store`. Resolves once every
 * file's store has settled.
 */
export async function storeEachFile(job: UploadJob, each: EachFile): Promise<UploadOutcome> {
  const { entries } = job;
  const files: ManifestEntry[] = [];
  const skipped: UploadOutcome['skipped'] = [];
  let bytesDone = 0;
  let next = 0;
  const storing: Promise<void>[] = [];

  const worker = async () => {
    while (next < entries.length) {
      const entry = entries[next++]!;
      if (entry.type === 'symlink') {
        files.push({ type: 'symlink', path: entry.name, target: entry.target });
        continue;
      }
      const refusal = each.refuse(entry);
      if (refusal) {
        skipped.push({ path: entry.source, reason: refusal });
        continue;
      }
      let read: FileRead;
      try {
        read = await job.reader.open(entry, { exactSize: false, partSize: job.partSize, checksum: job.checksum, chunks: each.chunks ?? false });
      } catch (error) {
        skipped.push({ path: entry.source, reason: describeRead(error) });
        continue;
      }
      let readAll!: () => void;
      const wasRead = new Promise<void>((resolve) => (readAll = resolve));
      const stored = each.store(entry, read, readAll).then(
        (file) => {
          if (!file) return;
          files.push(file);
          bytesDone += file.size;
        },
        (error: unknown) => void skipped.push({ path: entry.source, reason: each.failure(error) }),
      );
      storing.push(stored);
      await Promise.race([stored, wasRead]);
    }
  };

  await Promise.all(Array.from({ length: Math.min(job.concurrency, Math.max(1, entries.length)) }, worker));
  each.allRead?.();
  await Promise.all(storing);
  return { files, skipped, bytesDone, archive: null };
}
