import type { BackoffPolicy } from '../../lib/backoff.js';

/** How a webhook retries: `retries` more attempts after the first, exponential backoff. */
export interface RetryPolicy extends BackoffPolicy {
  retries: number;
}

/** What one attempt produced: an HTTP status, or a network error (no status). */
export interface AttemptOutcome {
  status?: number;
  /** The Retry-After header of a 429/5xx answer, as received. */
  retryAfter?: string;
}

export interface RetryQuestion {
  /** Attempts made so far (1 after the first). */
  attempt: number;
  outcome: AttemptOutcome;
  policy: RetryPolicy;
  /** Epoch ms now and the step deadline: no retry may start at or past it. */
  now: number;
  deadline: number;
  random?: () => number;
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: string };

/** Network errors, 5xx and 429 are worth another try; other answers will not change. */
export function isRetryable(outcome: AttemptOutcome): boolean {
  return outcome.status === undefined || outcome.status === 429 || outcome.status >= 500;
}

const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * Retry-After as a delay in ms: delta seconds (`120`) or an HTTP date. Undefined when
 * absent or unreadable; a date in the past means 0.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Only the IMF-fixdate form (`Wed, 21 Oct 2015 07:28:00 GMT`): Date.parse alone reads `-5` as a year.
  if (!HTTP_DATE.test(text)) return undefined;
  return Math.max(0, Date.parse(text) - now);
}

/**
 * Whether and when to try again. Full jitter (random between 0 and the exponential
 * ceiling) spreads a fleet's retries; a server's Retry-After wins over the backoff.
 * Pure, so the whole policy is unit tested without a clock.
 */
export function decideRetry(question: RetryQuestion): RetryDecision {
  const { attempt, outcome, policy, now, deadline, random = Math.random } = question;
  if (!isRetryable(outcome)) return { retry: false, reason: 'not retryable' };
  if (attempt > policy.retries) return { retry: false, reason: 'retries exhausted' };
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 30));
  const delayMs = parseRetryAfter(outcome.retryAfter, now) ?? Math.round(random() * ceiling);
  if (now + delayMs >= deadline) return { retry: false, reason: 'step deadline reached' };
  return { retry: true, delayMs };
}
