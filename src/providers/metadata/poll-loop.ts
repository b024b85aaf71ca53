import { METADATA_BACKOFF, backoffDelay, sleep, type BackoffPolicy } from '../../lib/backoff.js';
import { MetadataError } from '../../lib/errors.js';
import type { SourceReport } from './source-report.js';

/** One metadata source read on a schedule. */
export interface PolledSource<T> {
  report: SourceReport;
  /** The wait between the starts of two reads (jitter included). */
  nextIntervalMs(): number;
  /** One read and its interpretation; throws (MetadataError) on a failed or bad answer. */
  read(signal: AbortSignal): Promise<{ status: number; found: T[] }>;
  backoff?: BackoffPolicy;
}

/**
 * Polls one source until the signal aborts. The next read starts one interval after this
 * one started, not after it finished, so request time never adds to detection latency;
 * a failed read is reported and retried after a backoff. A failure that carries its own
 * retry schedule (`MetadataError.retryReady`: the shared token request backing off) is
 * retried as soon as that allows, with no backoff of this loop on top: two backoffs in a
 * row would keep the source blind for up to twice the cap after the service is back.
 * Never throws.
 */
export async function* pollSource<T>(source: PolledSource<T>, signal: AbortSignal): AsyncGenerator<T> {
  while (!signal.aborted) {
    const started = performance.now();
    let found: T[] = [];
    /** How long to wait before the next read, or what to wait for. */
    let wait: number | Promise<void>;
    try {
      const answer = await source.read(signal);
      source.report.ok(performance.now() - started, answer.status);
      found = answer.found;
      wait = source.nextIntervalMs() - (performance.now() - started);
    } catch (error) {
      if (signal.aborted) break;
      const failures = source.report.fail(error, performance.now() - started);
      wait = (error instanceof MetadataError ? error.retryReady : undefined) ?? backoffDelay(failures, source.backoff ?? METADATA_BACKOFF);
    }
    yield* found;
    await (typeof wait === 'number' ? sleep(Math.max(wait, 0), signal) : until(wait, signal));
  }
}

/** Resolves when `ready` does, or early (without throwing) when the signal aborts. */
function until(ready: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void ready.then(done);
  });
}
