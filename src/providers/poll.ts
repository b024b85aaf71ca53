import { METADATA_BACKOFF, backoffDelay, sleep, type BackoffPolicy } from '../backoff.js';
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
 * a failed read is reported and retried after a backoff. Never throws.
 */
export async function* pollSource<T>(source: PolledSource<T>, signal: AbortSignal): AsyncGenerator<T> {
  while (!signal.aborted) {
    const started = performance.now();
    let found: T[] = [];
    let delay: number;
    try {
      const answer = await source.read(signal);
      source.report.ok(performance.now() - started, answer.status);
      found = answer.found;
      delay = source.nextIntervalMs() - (performance.now() - started);
    } catch (error) {
      if (signal.aborted) break;
      delay = backoffDelay(source.report.fail(error, performance.now() - started), source.backoff ?? METADATA_BACKOFF);
    }
    yield* found;
    await sleep(Math.max(delay, 0), signal);
  }
}
