import { jest } from '@jest/globals';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { StoreLocation } from '../../src/stores/location.js';
import type { ObjectStore, StoreOptions } from '../../src/stores/types.js';

/**
 * The store the agent opens for the repository under test (`slowRepo`) is the real file://
 * store whose deletes wait, key by key, until the test lets them through: a prune held in the
 * middle of its deletes for as long as the test needs, without a mock of the prune.
 */
const held: (() => void)[] = [];
let slowRepo: string | undefined;
/** Cleared once the test ends: no delete waits any more. */
let holding = true;
/** Delete calls that ended with an error (a stopped prune's). */
let deletesRefused = 0;
const { openFileStore } = await import('../../src/stores/file.js');
jest.unstable_mockModule('../../src/stores/registry.js', () => ({
  openStore: (location: StoreLocation, options: StoreOptions): Promise<ObjectStore> => {
    const store = openFileStore(location as Extract<StoreLocation, { scheme: 'file' }>, options);
    if (location.scheme !== 'file' || resolve(location.directory) !== slowRepo) return Promise.resolve(store);
    const deleteNow = store.delete.bind(store);
    store.delete = async (keys, signal) => {
      try {
        for (const key of keys) {
          if (holding) await new Promise<void>((go) => held.push(go));
          await deleteNow([key], signal);
        }
      } catch (error) {
        deletesRefused += 1;
        throw error;
      }
    };
    return Promise.resolve(store);
  },
}));

const { TestResources } = await import('../helpers/resources.js');
const { committedFiles, filesUnder, latestSnapshot, restoredLatest, startSyncDaemon, syncTree, twoOldSnapshots } = await import('../helpers/sync-daemon.js');
const { scriptedNotice } = await import('../helpers/scripted-notice.js');
const { testBytes } = await import('../helpers/seed.js');
const { until } = await import('../helpers/until.js');
const { manifestObjects } = await import('../../src/snapshots/repository.js');

const resources = new TestResources('preemptd-sync-prune-beside-');
/** Lets every delete through from now on (before the daemon stops: its prune must end). */
function release(): void {
  holding = false;
  held.splice(0).forEach((go) => go());
}

const MIB = 1024 * 1024;

// A notice whose plan has no step at all; the rebalance is advisory: the sync flushes too.
test.each([
  ['terminate', 60_000],
  ['rebalance', null],
] as const)('the prune runs beside the sync: a checkpoint is committed while it deletes; a %s notice stops it at once; the repository stays consistent', async (kind, deadlineInMs) => {
  const where = syncTree(resources);
  const sync = { paths: [where.ckpt], to: `file://${where.repo}/`, settle: '200ms' };
  // Two snapshots three hours old (past the grace): the first, step-1.pt alone, is the prune's to delete with its chunks.
  await twoOldSnapshots(resources, where);

  slowRepo = resolve(where.repo);
  holding = true;
  deletesRefused = 0;
  const { daemon, provider } = await startSyncDaemon(resources, where.state, { ...sync, retention: { keepLast: 1, grace: '2h' } });
  // Deferred after the daemon's start, so run before its stop.
  resources.defer(release);
  await writeFile(join(where.ckpt, 'step-3.pt'), testBytes(MIB));
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-3.pt'), 20_000);
  // The prune that commit started waits at its first delete (the first snapshot's manifest).
  await until(() => held.length === 1, 20_000);
  const oldest = (await filesUnder(where.repo)).filter((name) => name.startsWith('snapshots/')).sort()[0]!;

  // (a) A checkpoint that settles now is stored and committed while the prune is held.
  const step4 = testBytes(MIB);
  await writeFile(join(where.ckpt, 'step-4.pt'), step4);
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-4.pt'), 20_000);
  expect(held).toHaveLength(1);

  // Let the first snapshot's manifest go: the prune waits at the first of its packs or chunks (one pack, or one chunk and more).
  const before = await filesUnder(where.repo);
  held.splice(0).forEach((go) => go());
  await until(() => held.length === 1);
  const present = new Set(await filesUnder(where.repo));
  expect(before.filter((name) => !present.has(name))).toEqual([oldest]);

  // (b) The notice stops the prune: nothing is deleted after it began.
  const began = new Promise((resolve) => daemon.once('notice', resolve));
  provider.notice(scriptedNotice(kind, deadlineInMs));
  await began;
  while (deletesRefused === 0 && daemon.syncs.status()[0]!.lastPruneAt === null) {
    held.splice(0).forEach((go) => go());
    await new Promise((resolve) => setImmediate(resolve));
  }
  const after = await filesUnder(where.repo);
  expect(after.filter((name) => !present.has(name))).toEqual([]);
  expect([...present].filter((name) => !after.includes(name))).toEqual([]);
  expect(daemon.syncs.status()[0]).toMatchObject({ lastPruneAt: null, lastPruneError: null });

  // (c) Every kept manifest's packs and chunks are there, and the newest restores.
  for (const name of after.filter((file) => file.startsWith('snapshots/'))) {
    const manifest = JSON.parse(await readFile(join(where.repo, name), 'utf8')) as Parameters<typeof manifestObjects>[0];
    for (const name of manifestObjects(manifest)) expect(after).toContain(name);
  }
  expect((await latestSnapshot(where.repo)).manifest.files.map((file) => file.path).sort()).toEqual(['ckpt/step-2.pt', 'ckpt/step-3.pt', 'ckpt/step-4.pt']);
  const restored = await restoredLatest(where);
  expect((await readFile(join(restored, 'ckpt/step-4.pt'))).equals(step4)).toBe(true);
  expect((await stat(join(restored, 'ckpt/step-3.pt'))).size).toBe(MIB);
}, 90_000);
