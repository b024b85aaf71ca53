import { jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import type { Manifest } from '../../src/snapshots/manifest.js';
import { chunkName, manifestObjects, packName } from '../../src/snapshots/repository.js';
import { PruneSchedule } from '../../src/snapshots/sync/prune-schedule.js';
import { parseLocation } from '../../src/stores/location.js';
import { openStore } from '../../src/stores/registry.js';
import type { ObjectStore } from '../../src/stores/types.js';
import { commitDedupSnapshot } from '../helpers/dedup-repository.js';
import { testBytes } from '../helpers/seed.js';
import { until } from '../helpers/until.js';

const exists = (path: string) => stat(path).then(() => true, () => false);

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

test('prunes after a commit at most once per max(1h, grace/4), never while a notice is handled', async () => {
  let notice = true;
  const { counted, pruning } = await schedule(undefined, () => notice);
  await pruning.afterCommit();
  expect(counted.listings).toBe(0);
  notice = false;

  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  await pruning.afterCommit();
  expect(counted.listings).toBeGreaterThan(0);
  expect(pruning.status()).toEqual({ lastPruneAt: Date.now(), lastPruneError: null });
  const once = counted.listings;
  // The default grace is 24h: every 6h at most.
  jest.setSystemTime(Date.now() + 6 * HOUR - 1);
  await pruning.afterCommit();
  expect(counted.listings).toBe(once);
  jest.setSystemTime(Date.now() + 1);
  await pruning.afterCommit();
  expect(counted.listings).toBe(2 * once);
});

test('with a short grace, still at most once an hour', async () => {
  const { counted, pruning } = await schedule(2 * HOUR, () => false);
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  await pruning.afterCommit();
  const once = counted.listings;
  jest.setSystemTime(Date.now() + HOUR - 1);
  await pruning.afterCommit();
  expect(counted.listings).toBe(once);
  jest.setSystemTime(Date.now() + 1);
  await pruning.afterCommit();
  expect(counted.listings).toBe(2 * once);
});

/**
 * A file:// repository holding `count` chunks no manifest names, written a day and more ago
 * (past the default grace: a prune deletes them all), and a store over it whose deletes wait
 * for the test at each call and before each key (`step` lets one through and waits for the
 * next); `gone` counts the chunk files really removed.
 */
async function oldChunks(count: number) {
  const location = parseLocation(`file://${dir}/`);
  const store: ObjectStore = await openStore(location, { partSize: 1024, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
  const keys = Array.from({ length: count }, (_, index) => chunkName(createHash('sha256').update(String(index)).digest('hex')));
  const past = (Date.now() - 30 * HOUR) / 1000;
  for (const key of keys) {
    await mkdir(dirname(join(dir, key)), { recursive: true });
    await writeFile(join(dir, key), key);
    await utimes(join(dir, key), past, past);
  }
  const waiting: (() => void)[] = [];
  const wait = () => new Promise<void>((resolve) => waiting.push(resolve));
  const allow = () => waiting.splice(0).forEach((resolve) => resolve());
  const deleteNow = store.delete.bind(store);
  store.delete = async (batch, signal) => {
    await wait();
    for (const key of batch) {
      await wait();
      await deleteNow([key], signal);
    }
  };
  const present = async () => (await Promise.all(keys.map((key) => stat(join(dir, key)).then(() => true, () => false)))).filter(Boolean).length;
  return {
    location,
    store,
    keys,
    waitingNow: () => until(() => waiting.length === 1),
    step: async () => {
      allow();
      await until(() => waiting.length === 1);
    },
    /** Lets every delete through until `done` settles. */
    drain: async (done: Promise<unknown>) => {
      let settled = false;
      void done.finally(() => (settled = true));
      while (!settled) {
        allow();
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
    allow,
    gone: async () => count - (await present()),
  };
}

const retention = { keepLast: 1, keepWithinMs: undefined, graceMs: undefined };

test('a stopped prune deletes nothing more, is no failure, and starts again after the next commit', async () => {
  const repo = await oldChunks(5);
  const pruning = new PruneSchedule(retention, repo.store, repo.location, silentLogger(), () => false);
  const first = pruning.afterCommit();
  await repo.waitingNow(); // the manifests' delete (none to go)
  await repo.step(); // the chunks' batch
  await repo.step(); // its first key
  await repo.step(); // deleted; the second key waits
  expect(await repo.gone()).toBe(1);
  pruning.stop('a notice is being handled');
  await repo.drain(first);
  expect(await repo.gone()).toBe(1);
  expect(pruning.status()).toEqual({ lastPruneAt: null, lastPruneError: null });

  const second = pruning.afterCommit();
  await repo.drain(second);
  expect(await repo.gone()).toBe(5);
  expect(pruning.status().lastPruneError).toBeNull();
  expect(pruning.status().lastPruneAt).not.toBeNull();
});

test('close() stops the running prune and waits for it', async () => {
  const repo = await oldChunks(3);
  const pruning = new PruneSchedule(retention, repo.store, repo.location, silentLogger(), () => false);
  let ended = false;
  void pruning.afterCommit().then(() => (ended = true));
  await repo.waitingNow();
  await repo.step();
  const closed = pruning.close();
  await repo.drain(closed);
  expect(ended).toBe(true);
  expect(await repo.gone()).toBe(0);
  expect(pruning.status()).toEqual({ lastPruneAt: null, lastPruneError: null });
});

test('a prune beside a writer storing packs never deletes one a manifest committed meanwhile names; old unnamed packs and chunks go', async () => {
  const repo = await oldChunks(3);
  const oldPacks = [packName('0'.repeat(24)), packName('1'.repeat(24))];
  const past = (Date.now() - 30 * HOUR) / 1000;
  await mkdir(join(dir, 'packs'), { recursive: true });
  for (const key of oldPacks) {
    await writeFile(join(dir, key), 'a pack a cut snapshot left');
    await utimes(join(dir, key), past, past);
  }
  const pruning = new PruneSchedule(retention, repo.store, repo.location, silentLogger(), () => false);
  const done = pruning.afterCommit();
  const layout = { chunkBytes: 4096, home: () => 'pack' as const };
  // The prune has listed every pack and chunk (all old, none named) and deletes the manifests: a writer commits one.
  await repo.waitingNow();
  const committed = [commitDedupSnapshot(dir, { 'a.pt': testBytes(20_000) }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, layout)];
  // The packs' and chunks' batch is being deleted: another commit.
  await repo.step();
  committed.push(commitDedupSnapshot(dir, { 'b.pt': testBytes(20_000) }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:10:00.000Z' }, layout));
  await repo.drain(done);

  expect(pruning.status().lastPruneError).toBeNull();
  for (const name of committed) {
    const manifest = JSON.parse(await readFile(join(dir, name), 'utf8')) as Manifest;
    const named = [...manifestObjects(manifest)];
    expect(named.length).toBeGreaterThan(0);
    for (const object of named) expect({ object, stored: await exists(join(dir, object)) }).toEqual({ object, stored: true });
  }
  for (const object of oldPacks) expect({ object, stored: await exists(join(dir, object)) }).toEqual({ object, stored: false });
  expect(await repo.gone()).toBe(3);
});
