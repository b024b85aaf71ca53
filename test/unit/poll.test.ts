import { silentLogger } from '../../src/lib/log.js';
import { pollSource } from '../../src/providers/metadata/poll-loop.js';
import type { MetadataRead } from '../../src/providers/types.js';
import { MetadataError } from '../../src/lib/errors.js';
import { SourceReport } from '../../src/providers/metadata/source-report.js';
import { FakeClock } from '../helpers/fake-clock.js';

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
        // A clock that never moves: a read that comes again came for another reason than a wait.
        clock: new FakeClock({ running: false }),
        nextIntervalMs: () => 600_000,
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
    // Were the loop's own backoff added, this would wait for a clock that never moves.
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
        clock: new FakeClock({ running: false }),
        nextIntervalMs: () => 20,
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

  test('a read waits one interval on the clock after the last answer, and a failure the source has its own wait for uses it instead of the backoff', async () => {
    const controller = new AbortController();
    const clock = new FakeClock();
    const failures: unknown[] = [];
    let attempts = 0;
    const polled = pollSource(
      {
        report: new SourceReport('instance/preempted', { log: silentLogger(), onRead: () => {} }),
        clock,
        nextIntervalMs: () => 60_000,
        read: async () => {
          attempts += 1;
          if (attempts === 1) throw new MetadataError('ERR_METADATA_HTTP', 'instance/preempted: HTTP 503', 503);
          return { status: 200, found: [`answer ${attempts}`] };
        },
        failed: (error) => {
          failures.push(error);
          return 1_234;
        },
      },
      controller.signal,
    );
    await expect(polled.next()).resolves.toEqual({ done: false, value: 'answer 2' });
    await expect(polled.next()).resolves.toEqual({ done: false, value: 'answer 3' });
    expect(failures).toEqual([expect.objectContaining({ status: 503 })]);
    expect(clock.sleeps).toEqual([1_234, 60_000]);
    controller.abort();
    await expect(polled.next()).resolves.toEqual({ done: true, value: undefined });
  });
});
