import { MetadataError, PreemptdError, errorMessage } from '../../lib/errors.js';
import { LogLimiter } from '../../lib/log-limit.js';
import type { WatchContext } from '../types.js';

/** After the first of a run of identical failures, log only every this many. */
const REPEAT_LOG_EVERY = 60;

/**
 * Reports each read of one metadata source through `onRead` and logs failures without
 * flooding: the first of a run of identical errors, then every 60th with a count, and one
 * line when the source answers again. Over all of that, at most SOURCE_LOG_LIMIT lines per
 * minute: a source that flaps between failing and answering is counted, not logged each time.
 */
export class SourceReport {
  private failures = 0;
  private lastError = '';
  private repeats = 0;
  private readonly limiter: LogLimiter;

  constructor(
    private readonly source: string,
    private readonly context: Pick<WatchContext, 'log' | 'onRead'>,
  ) {
    this.limiter = new LogLimiter(source);
  }

  private log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    const suppressed = this.limiter.admit();
    if (suppressed === undefined) return;
    if (suppressed === 0) this.context.log[level](fields, message);
    else this.context.log[level]({ ...fields, suppressedLines: suppressed }, `${message} (${suppressed} lines about this source suppressed before this one)`);
  }

  ok(ms: number, status: number): void {
    this.context.onRead({ source: this.source, ok: true, ms, status });
    if (this.failures > 0) {
      this.log('info', { source: this.source, failures: this.failures }, `metadata ${this.source}: answering again after ${this.failures} failed reads`);
      this.failures = 0;
      this.lastError = '';
      this.repeats = 0;
    }
  }

  /** Records a failed read; returns how many reads in a row have failed (for backoff). */
  fail(error: unknown, ms: number): number {
    const message = describeFailure(error);
    const status = error instanceof MetadataError ? error.status : undefined;
    const code = error instanceof PreemptdError ? error.code : undefined;
    this.context.onRead({ source: this.source, ok: false, ms, error: message, ...(code === undefined ? {} : { code }), ...(status === undefined ? {} : { status }) });
    this.failures += 1;
    if (message !== this.lastError) {
      this.lastError = message;
      this.repeats = 1;
      this.log('warn', { source: this.source, err: error, status }, `metadata ${this.source}: ${message}; retrying with backoff`);
    } else {
      this.repeats += 1;
      if (this.repeats % REPEAT_LOG_EVERY === 0) {
        this.log(
          'warn',
          { source: this.source, err: error, status, repeats: this.repeats },
          `metadata ${this.source}: still failing (${this.repeats} times in a row): ${message}`,
        );
      }
    }
    return this.failures;
  }
}

export function describeFailure(error: unknown): string {
  if (error instanceof PreemptdError) return error.message;
  return `unexpected error: ${errorMessage(error)}`;
}
