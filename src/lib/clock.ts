import { sleep } from './backoff.js';

/**
 * Time as the metadata watch loops see it: intervals, backoffs, token lifetimes. Tests hand
 * in a clock they move themselves, so a backoff costs them no real time. Bounds on real
 * I/O (request timeouts, the wait for facts) and the durations reported for reads stay on
 * real time: they describe the metadata service, not a schedule.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale: only differences mean anything. */
  now(): number;
  /** Resolves after `ms`, or early (without throwing) when the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Monotonic, so a wall-clock step (NTP, a suspended VM) never stretches a wait. */
export const REAL_CLOCK: Clock = { now: () => performance.now(), sleep };

/**
 * Resolves once the clock shows `at`, or when the signal aborts. A timer can fire a little
 * before the clock shows its time: then it waits the rest.
 */
export async function sleepUntil(clock: Clock, at: number, signal?: AbortSignal): Promise<void> {
  for (let left = at - clock.now(); left > 0 && !signal?.aborted; left = at - clock.now()) await clock.sleep(left, signal);
}
