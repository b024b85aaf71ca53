import type { ManifestFile } from './manifest.js';
import type { FoundFile } from './walk.js';

/**
 * A file a background pass read, cut and hashed to its end, some of whose new chunks the
 * bandwidth cap kept it from sending then: they are owed, known by offset, size and SHA-256,
 * and sent later by reading just those ranges again (sync/owed.ts), by the sync at its pace or
 * by the notice-time snapshot, which then reads nothing else of the file.
 */
export interface ScanPlan {
  /** The file as scanned: the plan holds only while it has the same device, inode, size and mtime. */
  file: FoundFile;
  /**
   * Its manifest entry (chunks, checksum, size, mtime), true once no chunk is owed: a chunk
   * stored is named with its pack and offset, an owed one as a bare `[sha256, size]` until
   * sendOwed stores it.
   */
  entry: ManifestFile;
  /** Indexes in `entry.chunks` not stored yet. */
  owed: Set<number>;
  /** Epoch ms the scan started (what the record keeps as the time its chunks were stored). */
  scannedAt: number;
}

/** One owed chunk: where it is in the file and what it must hash to. */
export interface OwedChunk {
  index: number;
  sha256: string;
  offset: number;
  size: number;
}

/** Whether `file`, found now, is still the file `plan` scanned. */
export function planHolds(plan: ScanPlan, file: FoundFile): boolean {
  const was = plan.file;
  return was.source === file.source && was.dev === file.dev && was.ino === file.ino && was.size === file.size && was.mtimeMs === file.mtimeMs;
}

/** The chunks `plan` still owes, in file order, with their offsets. */
export function owedChunks(plan: ScanPlan): OwedChunk[] {
  const owed: OwedChunk[] = [];
  let offset = 0;
  for (const [index, [sha256, size]] of (plan.entry.chunks ?? []).entries()) {
    if (plan.owed.has(index)) owed.push({ index, sha256, offset, size });
    offset += size;
  }
  return owed;
}

/** Bytes `plan` still owes. */
export function owedBytes(plan: ScanPlan): number {
  return owedChunks(plan).reduce((sum, chunk) => sum + chunk.size, 0);
}

/** The manifest entry of a plan with nothing owed, under the name and mode its file has now. */
export function planEntry(plan: ScanPlan): ManifestFile {
  return { ...plan.entry, path: plan.file.name, mode: plan.file.mode };
}
