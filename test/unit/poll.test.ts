import { silentLogger } from '../../src/lib/log.js';
import { pollSource } from '../../src/providers/metadata/poll-loop.js';
import type { MetadataRead } from '../../src/providers/types.js';
import { MetadataError } from '../../src/lib/errors.js';
import { SourceReport } from '../../src/providers/metadata/source-report.js';

/** A backoff no test could sit through: a read that comes again came for another reason. */
const NEVER_WAITED_OUT = { baseMs: 600_000, maxMs: 600_000 };

function tokenFailure(retryReady: Promise<void>): MetadataError {
  const failure = new MetadataError('ERR_TOKEN_TIMEOUT', 'token PUT got no answer');
  failure.retryReady = retryReady;
  return failure;
}

describe('pollSource', () => {
  test('a failure that says when a retry can succeed is retried then, with no backoff of the loop on top', async () => {
    const controller = new AbortController();
    const reads: MetadataRead[] = [];
    let allowRetry!: () => void;
    const retryAllowed = new Promise<void>((resolve) => (allowRetry = resolve));
    let attempts = 0;
    const polled = pollSource(
      {
        report: new SourceReport('spot/instance-action', { log: silentLogger(), onRead: (read) => reads.push(read) }),
        nextIntervalMs: () => 600_000,
        backoff: NEVER_WAITED_OUT,
        read: async () => {
          attempts += 1;
          if (attempts === 1) throw tokenFailure(retryAllowed);
          return { status: 200, found: ['notice'] };
        },
      },
      controller.signal,
    );
    const first = polled.next();
    // The failed read is reported, and nothing is read again until the retry is allowed.
    await new Promise((resolve) => setImmediate(resolve));
    expect(attempts).toBe(1);
    expect(reads.map((read) => read.ok)).toEqual([false]);
    allowRetry();
    // Were the loop's own backoff added, this would take ten minutes.
    await expect(first).resolves.toEqual({ done: false, value: 'notice' });
    expect(attempts).toBe(2);
    expect(reads.map((read) => read.ok)).toEqual([false, true]);
    controller.abort();
    await expect(polled.next()).resolves.toEqual({ done: true, value: undefined });
  });

  test('stopping while a failure waits for its retry ends the loop', async () => {
    const controller = new AbortController();
    const polled = pollSource(
      {
        report: new SourceReport('token', { log: silentLogger(), onRead: () => {} }),
        nextIntervalMs: () => 20,
        backoff: NEVER_WAITED_OUT,
        read: async () => {
          // The retry it names never comes.
          throw tokenFailure(new Promise(() => {}));
        },
      },
      controller.signal,
    );
    const next = polled.next();
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await expect(next).resolves.toEqual({ done: true, value: undefined });
  });
});
