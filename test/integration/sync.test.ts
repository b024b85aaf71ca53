import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import { serveDaemon } from '../../src/observe/local-server.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { TestResources } from '../helpers/resources.js';
import { newPackBytes, packObjects, committedFiles, latestSnapshot, restoredLatest, startSyncDaemon, stopDaemon, syncTree, type SyncTree } from '../helpers/sync-daemon.js';
import { testBytes } from '../helpers/seed.js';
import { testNotice, testStepContext } from '../helpers/step-context.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-sync-');
afterEach(() => resources.cleanUp());

const MIB = 1024 * 1024;

/** A real daemon with one sync `ckpt` of `where`'s tree (test/helpers/sync-daemon.ts). */
async function startDaemon(where: SyncTree, sync: Record<string, unknown> = {}): Promise<Daemon> {
  return (await startSyncDaemon(resources, where.state, { paths: [where.ckpt], to: `file://${where.repo}/`, settle: '200ms', bandwidth: '200MB/s', ...sync })).daemon;
}

test('a file written and settled is stored and committed without any notice; latest.json restores it byte-identical; a restart uploads nothing again', async () => {
  const where = syncTree(resources);
  const model = testBytes(3 * MIB);
  await writeFile(join(where.ckpt, 'step-1.pt'), model);

  const first = await startDaemon(where);
  await until(async () => (await readFile(join(where.repo, 'latest.json')).catch(() => null)) !== null, 20_000);
  expect(await committedFiles(where.repo)).toEqual(['ckpt/step-1.pt']);
  const status = first.syncs.status()[0]!;
  expect(status).toMatchObject({ name: 'ckpt', bytesStored: model.length, backlogFiles: 0, capBytesPerSecond: 200e6 });
  expect(status.lastCommitAt).not.toBeNull();
  const restored = await restoredLatest(where);
  expect((await readFile(join(restored, 'ckpt/step-1.pt'))).equals(model)).toBe(true);
  // The recovery point and the progress, in /v1/status and /metrics.
  const server = (await serveDaemon(first, { server: { enabled: true, host: '127.0.0.1', port: 0 }, readiness: { notReadyOn: [] }, steps: [] }, silentLogger()))!;
  try {
    const body = (await (await fetch(`${server.url}/v1/status`)).json()) as { syncs: Record<string, unknown>[] };
    expect(body.syncs).toEqual([
      expect.objectContaining({ name: 'ckpt', bytesStored: model.length, backlogFiles: 0, backlogBytes: 0, capBytesPerSecond: 200e6, recoveryPointAgeSeconds: expect.any(Number) }),
    ]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^preemptd_sync_recovery_point_age_seconds\{sync="ckpt"\} \d/m);
    expect(metrics).toContain(`preemptd_sync_bytes_stored_total{sync="ckpt"} ${model.length}`);
    expect(metrics).toContain('preemptd_sync_backlog_files{sync="ckpt"} 0');
    expect(metrics).toContain('preemptd_sync_cap_bytes_per_second{sync="ckpt"} 200000000');
  } finally {
    await server.close();
  }
  // The record is in stateDir.
  expect(JSON.parse(await readFile(join(where.state, 'sync', 'ckpt.json'), 'utf8'))).toMatchObject({ version: 1, files: [{ source: join(where.ckpt, 'step-1.pt') }] });
  await stopDaemon(first);

  const before = await packObjects(where.repo);
  const step1 = (await latestSnapshot(where.repo)).manifest.files.find((file) => file.path === 'ckpt/step-1.pt');
  expect(step1?.type === 'file' && step1.chunks!.every((chunk) => chunk.length === 4 && before.has(chunk[2]))).toBe(true);
  const second = await startDaemon(where);
  // A new checkpoint after the restart: once it is committed, the sync has looked at step-1.pt too.
  const next = testBytes(1 * MIB);
  await writeFile(join(where.ckpt, 'step-2.pt'), next);
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-2.pt'), 20_000);
  expect(await committedFiles(where.repo)).toEqual(['ckpt/step-1.pt', 'ckpt/step-2.pt']);
  const after = await packObjects(where.repo);
  // Not one of step-1.pt's chunks was sent again: same packs, untouched; one new pack holds step-2.pt.
  for (const [name, object] of before) expect(after.get(name)).toEqual(object);
  expect(newPackBytes(before, after)).toBe(next.length);
  expect(after.size).toBe(before.size + 1);
  // The record's locations: step-1.pt is named where it was stored before the restart.
  expect((await latestSnapshot(where.repo)).manifest.files.find((file) => file.path === 'ckpt/step-1.pt')).toEqual(step1);
  // Nor was step-1.pt read and hashed again: the record in stateDir says it is stored as it is.
  expect(second.syncs.status()[0]).toMatchObject({ bytesStored: next.length, bytesRead: next.length });
}, 60_000);

test('a file still being written is not stored until its marker says the checkpoint is complete', async () => {
  const where = syncTree(resources);
  await writeFile(join(where.ckpt, 'shard-0.pt'), testBytes(MIB));
  const daemon = await startDaemon(where, { paths: [join(where.ckpt, '*.pt')], marker: join(where.ckpt, 'COMPLETE'), settle: 0 });
  await until(() => daemon.syncs.status()[0]!.backlogFiles === 1);
  expect(await packObjects(where.repo)).toEqual(new Map());
  await writeFile(join(where.ckpt, 'COMPLETE'), '');
  await until(async () => (await readFile(join(where.repo, 'latest.json')).catch(() => null)) !== null, 20_000);
  expect(await committedFiles(where.repo)).toEqual(['ckpt/shard-0.pt']);
}, 30_000);

test('the notice-time snapshot tied to the sync sends only what the sync had not stored, then commits a complete manifest', async () => {
  const where = syncTree(resources);
  const base = testBytes(8 * MIB);
  await writeFile(join(where.ckpt, 'base.pt'), base);
  await writeFile(join(where.ckpt, 'COMPLETE'), '');
  // The marker holds back what the trainer writes after it: the background sync leaves the delta to the notice.
  const daemon = await startDaemon(where, { marker: join(where.ckpt, 'COMPLETE'), settle: 0 });
  await until(() => daemon.syncs.status()[0]!.lastCommitAt !== null, 20_000);
  const before = await packObjects(where.repo);

  const delta = testBytes(MIB);
  await writeFile(join(where.ckpt, 'delta.pt'), delta);
  const step = testStepContext({ timeoutMs: 30_000 });
  try {
    const detail = await snapshotStep.run(snapshotOptionsSchema.parse({ sync: 'ckpt' }), step.context);
    expect(detail).toMatchObject({ mode: 'dedup', complete: true, files: 3, bytesDone: base.length + delta.length, bytesSent: delta.length });
  } finally {
    step.dispose();
  }
  const after = await packObjects(where.repo);
  const atSink = newPackBytes(before, after);
  expect(atSink).toBeLessThanOrEqual(1.2 * delta.length);
  const { manifest } = await latestSnapshot(where.repo);
  expect(manifest.complete).toBe(true);
  expect(manifest.files.map((file) => file.path).sort()).toEqual(['ckpt/COMPLETE', 'ckpt/base.pt', 'ckpt/delta.pt']);
  const restored = await restoredLatest(where);
  expect((await readFile(join(restored, 'ckpt/base.pt'))).equals(base)).toBe(true);
  expect((await readFile(join(restored, 'ckpt/delta.pt'))).equals(delta)).toBe(true);
}, 60_000);

test('the notice-time snapshot takes over: the background pass in flight stops, the notice reads only what the scan still owed, and the recovery point moves to its commit', async () => {
  const where = syncTree(resources);
  const model = testBytes(16 * MIB);
  await writeFile(join(where.ckpt, 'model.pt'), model);
  // At 2 MB/s the background sync needs 8 s to send the file: the notice comes in the middle.
  const daemon = await startDaemon(where, { settle: '100ms', bandwidth: '2MB/s' });
  await until(() => daemon.syncs.status()[0]!.scannedFiles === 1, 20_000);
  const owedBefore = daemon.syncs.status()[0]!.owedBytes;
  const step = testStepContext({ timeoutMs: 30_000 });
  let committed: string;
  try {
    const detail = await snapshotStep.run(snapshotOptionsSchema.parse({ sync: 'ckpt' }), step.context);
    expect(detail).toMatchObject({ complete: true, bytesDone: model.length });
    // Only owed ranges, never the whole file again.
    expect(detail['bytesRead']).toBeLessThanOrEqual(owedBefore);
    committed = (await latestSnapshot(where.repo)).name;
  } finally {
    step.dispose();
  }
  // Passes resume after it; the file is in the record, so none reads it again.
  await until(() => daemon.syncs.status()[0]!.backlogFiles === 0 && daemon.syncs.status()[0]!.lastCommit === committed, 20_000);
  const readByTheSync = daemon.syncs.status()[0]!.bytesRead;
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(daemon.syncs.status()[0]).toMatchObject({ bytesRead: readByTheSync, scannedFiles: 0, owedBytes: 0, lastCommit: committed, capLifted: false });
  const restored = await restoredLatest(where);
  expect((await readFile(join(restored, 'ckpt/model.pt'))).equals(model)).toBe(true);
}, 60_000);

test('a snapshot tied to a sync that is not running fails with a message naming it', async () => {
  const step = testStepContext();
  try {
    await expect(snapshotStep.run(snapshotOptionsSchema.parse({ sync: 'nowhere' }), step.context)).rejects.toThrow('sync nowhere is not running');
  } finally {
    step.dispose();
  }
});

test('a file recorded over an hour ago whose chunks the latest snapshot does not name is read and stored again, never committed on trust', async () => {
  const where = syncTree(resources);
  const model = testBytes(2 * MIB);
  await writeFile(join(where.ckpt, 'step-1.pt'), model);
  const first = await startDaemon(where);
  await until(() => first.syncs.status()[0]!.lastCommitAt !== null, 20_000);
  await stopDaemon(first);

  // Another writer on the prefix moved latest.json to its own snapshot, and a prune deleted
  // the packs only our (now unkept) snapshot named, as it may once they are past its grace.
  const ours = await latestSnapshot(where.repo);
  const theirs = 'snapshots/other-writer.json';
  await writeFile(join(where.repo, theirs), JSON.stringify({ ...ours.manifest, files: [] }));
  await writeFile(join(where.repo, 'latest.json'), JSON.stringify({ version: 1, manifest: theirs, finishedAt: ours.manifest.finishedAt }));
  await rm(join(where.repo, 'packs'), { recursive: true });
  const recordPath = join(where.state, 'sync', 'ckpt.json');
  const record = JSON.parse(await readFile(recordPath, 'utf8')) as { files: { storedAt: number }[] };
  for (const file of record.files) file.storedAt -= 2 * 60 * 60_000;
  await writeFile(recordPath, JSON.stringify(record));

  const second = await startDaemon(where);
  await writeFile(join(where.ckpt, 'step-2.pt'), testBytes(1 * MIB));
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-2.pt'), 20_000);
  expect(await committedFiles(where.repo)).toEqual(['ckpt/step-1.pt', 'ckpt/step-2.pt']);
  expect(second.syncs.status()[0]!.bytesRead).toBe(model.length + MIB);
  const restored = await restoredLatest(where);
  expect((await readFile(join(restored, 'ckpt/step-1.pt'))).equals(model)).toBe(true);
}, 60_000);

test('a corrupt sync record is dropped with a warning: the sync starts over and sends nothing the store holds', async () => {
  const where = syncTree(resources);
  const model = testBytes(2 * MIB);
  await writeFile(join(where.ckpt, 'step-1.pt'), model);
  const first = await startDaemon(where);
  await until(() => first.syncs.status()[0]!.lastCommitAt !== null, 20_000);
  await stopDaemon(first);

  await writeFile(join(where.state, 'sync', 'ckpt.json'), '{"version": 1, "files": [tru');
  const second = await startDaemon(where);
  await until(() => second.syncs.status()[0]!.bytesRead === model.length, 20_000);
  expect(second.syncs.status()[0]).toMatchObject({ bytesStored: 0, lastError: null });
  // Rewritten whole once the file is stored again (until then it is the corrupt text).
  const recorded = async () => (JSON.parse(await readFile(join(where.state, 'sync', 'ckpt.json'), 'utf8')) as { files: unknown[] }).files.length;
  await until(async () => (await recorded().catch(() => 0)) === 1);
}, 60_000);

test('an advisory notice lifts the cap: what would take minutes at the cap is stored and committed at once', async () => {
  const where = syncTree(resources);
  await writeFile(join(where.ckpt, 'step-1.pt'), testBytes(2 * MIB));
  // 2 MiB at 10 kB/s: more than three minutes.
  const { daemon, provider } = await startSyncDaemon(resources, where.state, { paths: [where.ckpt], to: `file://${where.repo}/`, settle: '100ms', bandwidth: '10kB/s' });
  await until(() => daemon.syncs.status()[0]?.capBytesPerSecond === 10_000);
  // The pass has found the file and waits for tokens (the bucket starts empty).
  await until(() => daemon.syncs.status()[0]!.backlogFiles === 1);
  expect(daemon.syncs.status()[0]!.lastCommitAt).toBeNull();
  provider.notice(testNotice({ id: 'aws-rebalance-1', kind: 'rebalance', deadline: null }));
  await until(async () => (await readFile(join(where.repo, 'latest.json')).catch(() => null)) !== null, 20_000);
  expect(await committedFiles(where.repo)).toEqual(['ckpt/step-1.pt']);
  // Nothing left: the cap is back.
  await until(() => daemon.syncs.status()[0]!.capBytesPerSecond === 10_000);
}, 60_000);

test('with an interval, a checkpoint stored soon after a commit waits for the next one', async () => {
  const where = syncTree(resources);
  const first = testBytes(MIB);
  await writeFile(join(where.ckpt, 'step-1.pt'), first);
  const daemon = await startDaemon(where, { interval: '1h' });
  await until(() => daemon.syncs.status()[0]!.lastCommitAt !== null, 20_000);
  const committed = (await latestSnapshot(where.repo)).name;
  const second = testBytes(MIB);
  await writeFile(join(where.ckpt, 'step-2.pt'), second);
  await until(() => daemon.syncs.status()[0]!.bytesStored === first.length + second.length, 20_000);
  await daemon.stop();
  await until(() => daemon.state === 'stopped');
  expect((await latestSnapshot(where.repo)).name).toBe(committed);
  expect(await committedFiles(where.repo)).toEqual(['ckpt/step-1.pt']);
}, 30_000);

test('a checkpoint stored and recorded but not committed when the agent died is committed after the restart, with nothing sent again', async () => {
  const where = syncTree(resources);
  const first = testBytes(MIB);
  await writeFile(join(where.ckpt, 'step-1.pt'), first);
  const daemon = await startDaemon(where);
  await until(() => daemon.syncs.status()[0]!.lastCommitAt !== null, 20_000);
  await daemon.stop();
  await until(() => daemon.state === 'stopped');
  const committed = await latestSnapshot(where.repo);

  // A kill -9 between the record's save and the commit: the chunks are stored and the record
  // names them, but no manifest holds the file (the commit is put back to what it was).
  const second = testBytes(MIB);
  await writeFile(join(where.ckpt, 'step-2.pt'), second);
  const again = await startDaemon(where);
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-2.pt'), 20_000);
  await again.stop();
  await until(() => again.state === 'stopped');
  await writeFile(join(where.repo, 'latest.json'), JSON.stringify({ version: 1, manifest: committed.name, finishedAt: committed.manifest.finishedAt }));
  for (const name of await readdir(join(where.repo, 'snapshots'))) if (`snapshots/${name}` !== committed.name) await rm(join(where.repo, 'snapshots', name));
  expect(await committedFiles(where.repo)).toEqual(['ckpt/step-1.pt']);

  const restarted = await startDaemon(where);
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-2.pt'), 20_000);
  expect(await committedFiles(where.repo)).toEqual(['ckpt/step-1.pt', 'ckpt/step-2.pt']);
  expect(restarted.syncs.status()[0]).toMatchObject({ bytesStored: 0, bytesRead: 0 });
  const restored = await restoredLatest(where);
  expect((await readFile(join(restored, 'ckpt/step-2.pt'))).equals(second)).toBe(true);
}, 60_000);

test('a restart whose record the latest snapshot already holds commits nothing new', async () => {
  const where = syncTree(resources);
  await writeFile(join(where.ckpt, 'step-1.pt'), testBytes(MIB));
  const first = await startDaemon(where);
  await until(() => first.syncs.status()[0]!.lastCommitAt !== null, 20_000);
  await stopDaemon(first);
  const committed = (await latestSnapshot(where.repo)).name;

  const second = await startDaemon(where);
  // A pass has run once the backlog is known and a second file is committed; step-1 alone never is again.
  await writeFile(join(where.ckpt, 'step-2.pt'), testBytes(MIB));
  await until(async () => (await committedFiles(where.repo)).includes('ckpt/step-2.pt'), 20_000);
  await second.stop();
  await until(() => second.state === 'stopped');
  expect((await readdir(join(where.repo, 'snapshots'))).map((name) => `snapshots/${name}`).filter((name) => name !== committed)).toHaveLength(1);
}, 60_000);
