import type { SyncEntry } from '../../config/sync-schema.js';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { StoreLocation } from '../../stores/location.js';
import type { ObjectStore } from '../../stores/types.js';
import { prune } from '../prune.js';
import { DEFAULT_GRACE_MS, type RetentionPolicy } from '../retention.js';
import type { SyncStatus } from './status.js';

/** The least time between two prunes of a sync: a prune lists every chunk of the repository. */
const MIN_PRUNE_INTERVAL_MS = 60 * 60_000;

/**
 * The retention a sync applies after its commits (its `retention:` setting): a prune at most
 * once per max(1h, grace/4), counted from the last one tried. A failed prune is a warning and
 * shows in the status; the sync goes on.
 */
export class PruneSchedule {
  private readonly policy: RetentionPolicy;
  private readonly intervalMs: number;
  private lastTried: number | undefined;
  /** Epoch ms of the last prune that finished. */
  private lastPrune: number | null = null;
  private lastPruneError: string | null = null;

  constructor(
    retention: NonNullable<SyncEntry['retention']>,
    private readonly store: ObjectStore,
    private readonly location: StoreLocation,
    private readonly log: Logger,
    /** Whether a notice is being handled: never a prune in its window. */
    private readonly inNotice: () => boolean,
  ) {
    this.policy = { keepLast: retention.keepLast, keepWithinMs: retention.keepWithinMs, graceMs: retention.graceMs ?? DEFAULT_GRACE_MS };
    this.intervalMs = Math.max(MIN_PRUNE_INTERVAL_MS, this.policy.graceMs / 4);
  }

  status(): Pick<SyncStatus, 'lastPruneAt' | 'lastPruneError'> {
    return { lastPruneAt: this.lastPrune, lastPruneError: this.lastPruneError };
  }

  /** After a commit: prunes when due. `signal` (a notice-time snapshot taking over) stops it, which is no failure. */
  async afterCommit(signal: AbortSignal): Promise<void> {
    const now = Date.now();
    if (signal.aborted || this.inNotice() || (this.lastTried !== undefined && now - this.lastTried < this.intervalMs)) return;
    this.lastTried = now;
    try {
      const report = await prune(this.store, this.location, { policy: this.policy, apply: true, log: this.log, now, signal });
      this.lastPrune = Date.now();
      this.lastPruneError = null;
      this.log.info({ manifests: report.manifests.length, chunks: report.chunks, bytes: report.bytes }, 'sync pruned its repository');
    } catch (error) {
      if (signal.aborted) return;
      this.lastPruneError = errorMessage(error);
      this.log.warn({ err: error }, 'sync prune failed; the sync goes on and tries again later');
    }
  }
}
