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
 * once per max(1h, grace/4), counted from the last one tried, run beside the sync's passes
 * (never awaited by them: a prune lists and deletes for minutes on a big repository), one at a
 * time. It is safe beside the sync's own commits as beside any other writer's (docs/snapshot.md,
 * "Retention": a writer puts only packs of new random names, so the prune never deletes an object
 * put since it listed it).
 * A notice stops it (no failure); a failed prune is a warning and shows in the status.
 */
export class PruneSchedule {
  private readonly policy: RetentionPolicy;
  private readonly intervalMs: number;
  private lastTried: number | undefined;
  /** Epoch ms of the last prune that finished. */
  private lastPrune: number | null = null;
  private lastPruneError: string | null = null;
  private running: { stop: AbortController; done: Promise<void> } | undefined;

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

  /** After a commit: starts a prune when due and none runs. Resolves when it ends (never rejects); the sync does not wait. */
  afterCommit(): Promise<void> {
    const now = Date.now();
    if (this.running || this.inNotice() || (this.lastTried !== undefined && now - this.lastTried < this.intervalMs)) return Promise.resolve();
    const triedBefore = this.lastTried;
    this.lastTried = now;
    const stop = new AbortController();
    const done = prune(this.store, this.location, { policy: this.policy, apply: true, log: this.log, now, signal: stop.signal }).then(
      (report) => {
        this.lastPrune = Date.now();
        this.lastPruneError = null;
        this.log.info({ manifests: report.manifests.length, objects: report.objects, bytes: report.bytes }, 'sync pruned its repository');
      },
      (error: unknown) => {
        if (stop.signal.aborted) {
          // Cut short, not tried: the next commit after the notice starts it again.
          this.lastTried = triedBefore;
          this.log.info({ why: String(stop.signal.reason) }, 'sync prune stopped; what it deleted is consistent, the next one finishes the job');
          return;
        }
        this.lastPruneError = errorMessage(error);
        this.log.warn({ err: error }, 'sync prune failed; the sync goes on and tries again later');
      },
    );
    this.running = {
      stop,
      done: done.finally(() => {
        this.running = undefined;
      }),
    };
    return this.running.done;
  }

  /** Stops the running prune, if any, before its next listed or deleted key; `why` is logged. */
  stop(why: string): void {
    this.running?.stop.abort(why);
  }

  /** Stops the running prune and waits until it has. */
  async close(): Promise<void> {
    this.stop('the sync is stopping');
    await this.running?.done;
  }
}
