import { jest } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { PruneSchedule } from '../../src/snapshots/sync/prune-schedule.js';
import { parseLocation } from '../../src/stores/location.js';
import { openStore } from '../../src/stores/registry.js';
import type { ObjectStore } from '../../src/stores/types.js';

const HOUR = 60 * 60_000;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prune-schedule-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** A schedule over an empty file:// repository; `listings` counts the store's list calls (a prune lists snapshots and chunks). */
async function schedule(grace: number | undefined, inNotice: () => boolean) {
  const location = parseLocation(`file://${dir}/`);
  const store: ObjectStore = await openStore(location, { partSize: 1024, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
  const counted = { listings: 0 };
  const list = store.list.bind(store);
  store.list = (prefix) => {
    counted.listings += 1;
    return list(prefix);
  };
  return { counted, pruning: new PruneSchedule({ keepLast: 1, keepWithinMs: undefined, graceMs: grace }, store, location, silentLogger(), inNotice) };
}

afterEach(() => jest.useRealTimers());

test('prunes after a commit at most once per max(1h, grace/4), never while a notice is handled or once taken over', async () => {
  let notice = true;
  const { counted, pruning } = await schedule(undefined, () => notice);
  await pruning.afterCommit(new AbortController().signal);
  expect(counted.listings).toBe(0);
  notice = false;
  const takenOver = new AbortController();
  takenOver.abort();
  await pruning.afterCommit(takenOver.signal);
  expect(counted.listings).toBe(0);

  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  await pruning.afterCommit(new AbortController().signal);
  expect(counted.listings).toBeGreaterThan(0);
  expect(pruning.status()).toEqual({ lastPruneAt: Date.now(), lastPruneError: null });
  const once = counted.listings;
  // The default grace is 24h: every 6h at most.
  jest.setSystemTime(Date.now() + 6 * HOUR - 1);
  await pruning.afterCommit(new AbortController().signal);
  expect(counted.listings).toBe(once);
  jest.setSystemTime(Date.now() + 1);
  await pruning.afterCommit(new AbortController().signal);
  expect(counted.listings).toBe(2 * once);
});

test('with a short grace, still at most once an hour', async () => {
  const { counted, pruning } = await schedule(2 * HOUR, () => false);
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  await pruning.afterCommit(new AbortController().signal);
  const once = counted.listings;
  jest.setSystemTime(Date.now() + HOUR - 1);
  await pruning.afterCommit(new AbortController().signal);
  expect(counted.listings).toBe(once);
  jest.setSystemTime(Date.now() + 1);
  await pruning.afterCommit(new AbortController().signal);
  expect(counted.listings).toBe(2 * once);
});
