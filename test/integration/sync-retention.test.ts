import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestResources } from '../helpers/resources.js';
import { committedFiles, filesUnder, restoredLatest, startSyncDaemon, syncTree, twoOldSnapshots, type SyncTree } from '../helpers/sync-daemon.js';
import { testBytes } from '../helpers/seed.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-sync-retention-');
afterEach(() => resources.cleanUp());

const MIB = 1024 * 1024;

const startDaemon = async (where: SyncTree, sync: Record<string, unknown> = {}) =>
  (await startSyncDaemon(resources, where.state, { paths: [where.ckpt], to: `file://${where.repo}/`, settle: '200ms', ...sync })).daemon;

/**
 * Two snapshots committed by a sync, three hours ago (every object's mtime set back, past any
 * grace): the first holds step-1.pt alone, the second step-2.pt alone. Then the sync restarts
 * with `sync` and commits a third snapshot (step-2.pt and step-3.pt). Resolves to the running
 * daemon, the first snapshot's name and step-1.pt's chunk objects.
 */
async function historyThenCommit(where: SyncTree, sync: Record<string, unknown>) {
  const { oldest, step1Chunks } = await twoOldSnapshots(resources, where);
  const daemon = await startDaemon(where, sync);
  const step3 = testBytes(MIB);
  await writeFile(join(where.ckpt, 'step-3.pt'), step3);
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-3.pt'), 20_000);
  return { daemon, oldest, step1Chunks, step3 };
}

test('with retention, the running sync prunes after its commit: snapshots beyond keepLast and their chunks go; the latest restores', async () => {
  const where = syncTree(resources);
  const { daemon, oldest, step1Chunks, step3 } = await historyThenCommit(where, { retention: { keepLast: 1, grace: '2h' } });
  await until(() => daemon.syncs.status()[0]!.lastPruneAt !== null, 20_000);
  expect(daemon.syncs.status()[0]).toMatchObject({ lastPruneError: null });
  expect(step1Chunks.length).toBeGreaterThan(0);

  const left = await filesUnder(where.repo);
  // The first snapshot is gone with step-1.pt's chunks; the second stays (latest.json named it
  // when the grace began), and the one just committed.
  expect(left).not.toContain(oldest);
  expect(left.filter((name) => name.startsWith('snapshots/'))).toHaveLength(2);
  for (const chunk of step1Chunks) expect(left).not.toContain(chunk);
  const restored = await restoredLatest(where);
  expect((await readFile(join(restored, 'ckpt/step-3.pt'))).equals(step3)).toBe(true);
  expect((await stat(join(restored, 'ckpt/step-2.pt'))).size).toBe(MIB);
}, 60_000);

test('without retention, the sync deletes nothing', async () => {
  const where = syncTree(resources);
  const { daemon, oldest, step1Chunks } = await historyThenCommit(where, {});
  const left = await filesUnder(where.repo);
  expect(left).toContain(oldest);
  for (const chunk of step1Chunks) expect(left).toContain(chunk);
  expect(daemon.syncs.status()[0]).toMatchObject({ lastPruneAt: null, lastPruneError: null });
}, 60_000);

test('a prune that fails is a warning in the status; the sync goes on storing and committing', async () => {
  const where = syncTree(resources);
  await mkdir(join(where.repo, 'snapshots'), { recursive: true });
  // Not a manifest: prune refuses to delete anything while a manifest's chunks are unknown.
  await writeFile(join(where.repo, 'snapshots', 'crafted.json'), '{"version": 99}');
  await writeFile(join(where.ckpt, 'step-1.pt'), testBytes(MIB));
  const daemon = await startDaemon(where, { retention: { keepLast: 1 } });
  await until(() => daemon.syncs.status()[0]!.lastPruneError !== null, 20_000);
  expect(daemon.syncs.status()[0]!.lastPruneError).toMatch(/nothing was deleted: a manifest does not read as a preemptd manifest[\s\S]*snapshots\/crafted\.json/);
  expect(daemon.syncs.status()[0]!.lastPruneAt).toBeNull();
  await writeFile(join(where.ckpt, 'step-2.pt'), testBytes(MIB));
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-2.pt'), 20_000);
  expect(await filesUnder(where.repo)).toContain('snapshots/crafted.json');
}, 60_000);
