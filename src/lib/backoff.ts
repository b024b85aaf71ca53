/** Backoff policy, a pure function so it can be unit tested and reused. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Capped at 5 s: the shortest notices (GCP, Azure Preempt) give 30 s, and a cap of 30 s
 * left the agent blind for up to 30 s after the metadata service came back (the fault
 * suite saw 14 s after a 10 s outage). One try per 2.5-5 s still spares a failing service.
 */
export const METADATA_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 5_000 };

/**
 * Delay before retry number `attempt` (1 = first retry): exponential, capped, with full
 * jitter so a fleet that lost its metadata service at once does not return in lockstep.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  // Never below half the ceiling: a zero delay would hammer a service that is already failing.
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * The poll interval with ±2 % jitter, so many agents drift out of step on IMDS. Kept this
 * small on purpose: the worst-case detection delay is the longest interval, and ±10 %
 * would push p99 past 1.05 s at a 1 s poll.
 */
export function jitteredInterval(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (0.98 + random() * 0.04));
}

/** Resolves after `ms`, or early (without throwing) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
