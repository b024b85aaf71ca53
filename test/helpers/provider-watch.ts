import { Writable } from 'node:stream';
import { createLogger } from '../../src/lib/log.js';
import type { MetadataRead, Provider, ProviderEvent, ProviderOptions, WatchContext } from '../../src/providers/types.js';

/** Provider options for tests: a short poll so tests run fast, everything else ordinary. */
export function testProviderOptions(baseUrl: string, overrides: Partial<ProviderOptions> = {}): ProviderOptions {
  return {
    baseUrl,
    pollIntervalMs: 20,
    requestTimeoutMs: 1000,
    aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 1000 },
    gcp: { hangTimeoutSeconds: 5 },
    ...overrides,
  };
}

export interface WatchRecorder {
  context: WatchContext;
  reads: MetadataRead[];
  /** Every log line, parsed, as the agent's logger writes it. */
  logs: Array<Record<string, unknown>>;
  /**
   * The first read, already reported or still to come, that passes `test`: a test waits on
   * what the provider did instead of on time. Rejects if the watch is stopped first.
   */
  readMatching(test: (read: MetadataRead) => boolean): Promise<MetadataRead>;
  abort(): void;
}

export function watchRecorder(): WatchRecorder {
  const controller = new AbortController();
  const reads: MetadataRead[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const waiters = new Set<{ test: (read: MetadataRead) => boolean; resolve: (read: MetadataRead) => void }>();
  const onRead = (read: MetadataRead) => {
    reads.push(read);
    for (const waiter of waiters) {
      if (!waiter.test(read)) continue;
      waiters.delete(waiter);
      waiter.resolve(read);
    }
  };
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return {
    context: { signal: controller.signal, log: createLogger({ level: 'debug', destination: sink }), onRead },
    reads,
    logs,
    readMatching: (test) => {
      const seen = reads.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = { test, resolve };
        waiters.add(waiter);
        controller.signal.addEventListener('abort', () => {
          if (waiters.delete(waiter)) reject(new Error(`the watch stopped before the awaited metadata read; reads: ${JSON.stringify(reads)}`));
        });
      });
    },
    abort: () => controller.abort(),
  };
}

/**
 * Watches until `count` events arrive, then stops the provider. Fails the test after
 * `limitMs` instead of hanging when the events never come.
 */
export async function collectEvents(provider: Provider, recorder: WatchRecorder, count: number, limitMs = 10_000): Promise<ProviderEvent[]> {
  const events: ProviderEvent[] = [];
  const timer = setTimeout(() => recorder.abort(), limitMs);
  try {
    for await (const event of provider.watch(recorder.context)) {
      events.push(event);
      if (events.length === count) break;
    }
  } finally {
    clearTimeout(timer);
    recorder.abort();
  }
  if (events.length < count) throw new Error(`expected ${count} provider events within ${limitMs} ms, got ${events.length}: ${JSON.stringify(events)}`);
  return events;
}

export function noticeOf(event: ProviderEvent | undefined) {
  if (event?.type !== 'notice') throw new Error(`expected a notice event, got ${JSON.stringify(event)}`);
  return event.notice;
}
