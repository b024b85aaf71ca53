import { decideRetry, isRetryable, parseRetryAfter, type RetryPolicy } from '../../src/steps/webhook/retry.js';
import { proxyFromEnv } from '../../src/steps/webhook/send.js';

const policy: RetryPolicy = { retries: 5, baseMs: 100, maxMs: 1000 };
const now = 1_000_000;
const far = now + 60_000;

describe('decideRetry', () => {
  test('retries network errors, 5xx and 429, and nothing else', () => {
    expect(isRetryable({})).toBe(true);
    expect(isRetryable({ status: 500 })).toBe(true);
    expect(isRetryable({ status: 503 })).toBe(true);
    expect(isRetryable({ status: 429 })).toBe(true);
    expect(isRetryable({ status: 404 })).toBe(false);
    expect(isRetryable({ status: 400 })).toBe(false);
    expect(decideRetry({ attempt: 1, outcome: { status: 403 }, policy, now, deadline: far })).toEqual({ retry: false, reason: 'not retryable' });
  });

  test('full jitter: the delay lies between 0 and the exponential ceiling, capped at max', () => {
    const delay = (attempt: number, random: number) => {
      const decision = decideRetry({ attempt, outcome: { status: 500 }, policy, now, deadline: far, random: () => random });
      return decision.retry ? decision.delayMs : undefined;
    };
    expect(delay(1, 0)).toBe(0);
    expect(delay(1, 0.999999)).toBe(100);
    expect(delay(2, 0.999999)).toBe(200);
    expect(delay(3, 0.5)).toBe(200);
    expect(delay(5, 0.999999)).toBe(1000);
  });

  test('stops once the retries are used up', () => {
    expect(decideRetry({ attempt: 5, outcome: {}, policy, now, deadline: far }).retry).toBe(true);
    expect(decideRetry({ attempt: 6, outcome: {}, policy, now, deadline: far })).toEqual({ retry: false, reason: 'retries exhausted' });
  });

  test('honours Retry-After in seconds and as an HTTP date, over the backoff', () => {
    expect(decideRetry({ attempt: 1, outcome: { status: 429, retryAfter: '3' }, policy, now, deadline: far })).toEqual({ retry: true, delayMs: 3000 });
    const at = new Date(now + 7000).toUTCString();
    expect(decideRetry({ attempt: 1, outcome: { status: 503, retryAfter: at }, policy, now, deadline: far })).toEqual({ retry: true, delayMs: 7000 });
  });

  test('never schedules a retry at or past the deadline', () => {
    const decision = decideRetry({ attempt: 1, outcome: { status: 429, retryAfter: '5' }, policy, now, deadline: now + 4000 });
    expect(decision).toEqual({ retry: false, reason: 'step deadline reached' });
    expect(decideRetry({ attempt: 1, outcome: {}, policy, now, deadline: now, random: () => 0 }).retry).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  test('reads delta seconds, HTTP dates and treats a past date as no wait', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(new Date(now + 2000).toUTCString(), now)).toBe(2000);
    expect(parseRetryAfter(new Date(now - 2000).toUTCString(), now)).toBe(0);
  });

  test('ignores a missing or unreadable value', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});

describe('proxyFromEnv', () => {
  const https = new URL('https://hooks.slack.com/services/x');
  const http = new URL('http://chat.internal.example/hook');

  test('uses HTTPS_PROXY for https and HTTP_PROXY for http, in either case', () => {
    expect(proxyFromEnv(https, { HTTPS_PROXY: 'http://proxy:3128' })).toBe('http://proxy:3128');
    expect(proxyFromEnv(https, { https_proxy: 'http://p:1' })).toBe('http://p:1');
    expect(proxyFromEnv(http, { HTTP_PROXY: 'http://proxy:3128', HTTPS_PROXY: 'http://other:1' })).toBe('http://proxy:3128');
    expect(proxyFromEnv(https, {})).toBeUndefined();
  });

  test('bypasses hosts listed in NO_PROXY by name, domain suffix or *', () => {
    const env = { HTTP_PROXY: 'http://proxy:3128' };
    expect(proxyFromEnv(http, { ...env, NO_PROXY: 'chat.internal.example' })).toBeUndefined();
    expect(proxyFromEnv(http, { ...env, NO_PROXY: 'localhost,.internal.example' })).toBeUndefined();
    expect(proxyFromEnv(http, { ...env, no_proxy: 'internal.example:8080' })).toBeUndefined();
    expect(proxyFromEnv(http, { ...env, NO_PROXY: '*' })).toBeUndefined();
    expect(proxyFromEnv(http, { ...env, NO_PROXY: 'example.org,xinternal.example' })).toBe('http://proxy:3128');
  });
});
