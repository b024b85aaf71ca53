import type { ManifestFile } from '../manifest.js';
import { CHUNK_REUSE_WINDOW_MS } from '../repository.js';
import { owedBytes, planHolds, type ScanPlan } from '../scan-plan.js';
import type { FoundEntry, FoundFile } from '../walk.js';

/**
 * The sync's scanned-but-not-yet-stored files (ScanPlan), in memory only: a restart reads
 * them again. A plan whose file no longer holds (size, mtime, inode moved) is dropped when
 * looked up, and so is one scanned longer ago than CHUNK_REUSE_WINDOW_MS: it relies on chunks
 * found or put at its scan, which a prune (grace >= 2 h) may delete once they are that old
 * and no manifest names them; a new scan looks for them again or puts them anew.
 */
export class ScanPlans {
  private readonly bySource = new Map<string, ScanPlan>();

  add(plans: readonly ScanPlan[]): void {
    for (const plan of plans) this.bySource.set(plan.file.source, plan);
  }

  /** The plan of `file` when it still holds, now naming `file` as found (its mode and name); a stale one is dropped. */
  holding(file: FoundFile, now = Date.now()): ScanPlan | undefined {
    const plan = this.bySource.get(file.source);
    if (!plan) return undefined;
    if (!planHolds(plan, file) || now - plan.scannedAt > CHUNK_REUSE_WINDOW_MS) {
      this.bySource.delete(file.source);
      return undefined;
    }
    plan.file = file;
    return plan;
  }

  /** Splits `entries`, keeping their order: files `stored` gives an entry for, files with a plan that holds, and the rest. */
  split(entries: readonly FoundEntry[], stored: (file: FoundFile) => ManifestFile | undefined): { stored: ManifestFile[]; planned: ScanPlan[]; toStore: FoundEntry[] } {
    const split = { stored: [] as ManifestFile[], planned: [] as ScanPlan[], toStore: [] as FoundEntry[] };
    for (const entry of entries) {
      const done = entry.type === 'file' ? stored(entry) : undefined;
      const plan = entry.type === 'file' && !done ? this.holding(entry) : undefined;
      if (done) split.stored.push(done);
      else if (plan) split.planned.push(plan);
      else split.toStore.push(entry);
    }
    return split;
  }

  /** Forgets plans that are done (the record has them) or broken (read whole again). */
  drop(plans: Iterable<ScanPlan>): void {
    for (const plan of plans) if (this.bySource.get(plan.file.source) === plan) this.bySource.delete(plan.file.source);
  }

  /** Drops plans of files no longer found. */
  keepOnly(found: readonly FoundFile[]): void {
    const present = new Set(found.map((file) => file.source));
    for (const source of this.bySource.keys()) if (!present.has(source)) this.bySource.delete(source);
  }

  /** Files scanned whose chunks are not all stored, and the bytes they still owe. */
  status(): { scannedFiles: number; owedBytes: number } {
    const plans = [...this.bySource.values()];
    return { scannedFiles: plans.length, owedBytes: plans.reduce((sum, plan) => sum + owedBytes(plan), 0) };
  }
}
