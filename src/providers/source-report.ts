import { PreemptdError, errorMessage } from '../errors.js';
import { MetadataRequestError } from './metadata-client.js';
import type { WatchContext } from './provider.js';

/** A metadata read that failed in a way the provider understands (HTTP status, bad body). */
export class MetadataError extends PreemptdError {
  readonly status: number | undefined;
  constructor(code: 'ERR_METADATA_HTTP' | 'ERR_METADATA_BODY' | 'ERR_METADATA_TIMEOUT' | 'ERR_TOKEN_TIMEOUT', message: string, status?: number) {
    super(code, message);
    this.name = 'MetadataError';
    this.status = status;
  }
}

/** After the first of a run of identical failures, log only every this many. */
const REPEAT_LOG_EVERY = 60;

/**
 * Reports each read of one metadata source through `onRead` and logs failures without
 * flooding: the first of a run of identical errors, then every 60th with a count, and one
 * line when the source answers again.
 */
export class SourceReport {
  private failures = 0;
  private lastError = '';
  private repeats = 0;

  constructor(
    private readonly source: string,
    private readonly context: Pick<WatchContext, 'log' | 'onRead'>,
  ) {}

  ok(ms: number, status: number): void {
    this.context.onRead({ source: this.source, ok: true, ms, status });
    if (this.failures > 0) {
      this.context.log.info({ source: this.source, failures: this.failures }, `metadata ${this.source}: answering again after ${this.failures} failed reads`);
      this.failures = 0;
      this.lastError = '';
      this.repeats = 0;
    }
  }

  /** Records a failed read; returns how many reads in a row have failed (for backoff). */
  fail(error: unknown, ms: number): number {
    const message = describeFailure(error);
    const status = error instanceof MetadataError ? error.status : undefined;
    this.context.onRead({ source: this.source, ok: false, ms, error: message, ...(status === undefined ? {} : { status }) });
    this.failures += 1;
    if (message !== this.lastError) {
      this.lastError = message;
      this.repeats = 1;
      this.context.log.warn({ source: this.source, error: message, status }, `metadata ${this.source}: ${message}; retrying with backoff`);
    } else {
      this.repeats += 1;
      if (this.repeats % REPEAT_LOG_EVERY === 0) {
        this.context.log.warn(
          { source: this.source, error: message, status, repeats: this.repeats },
          `metadata ${this.source}: still failing (${this.repeats} times in a row): ${message}`,
        );
      }
    }
    return this.failures;
  }
}

export function describeFailure(error: unknown): string {
  if (error instanceof MetadataRequestError || error instanceof PreemptdError) return error.message;
  return `unexpected error: ${errorMessage(error)}`;
}
