import { createHash } from 'node:crypto';
import { open, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import { serveDaemon } from '../../src/observe/local-server.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { TestResources } from '../helpers/resources.js';
import { testBytes } from '../helpers/seed.js';
import { testStepContext } from '../helpers/step-context.js';
import { latestSnapshot, newPackBytes, packObjects, restoredLatest, startSyncDaemon, syncTree, type SyncTree } from '../helpers/sync-daemon.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-sync-scan-');
afterEach(() => resources.cleanUp());

const MIB = 1024 * 1024;

/**
 * A real daemon whose sync `ckpt` of `where`'s tree is capped at 1 MB/s: it reads a file to its
 * end at once, and then needs seconds to send what the cap held back (the bucket holds half a
 * second of tokens), so a notice comes while most of it is still owed.
 */
async function startCapped(where: SyncTree, sync: Record<string, unknown> = {}): Promise<Daemon> {
  return (await startSyncDaemon(resources, where.state, { paths: [where.ckpt], to: `file://${where.repo}/`, settle: '100ms', bandwidth: '1MB/s', ...sync })).daemon;
}

/** Runs a snapshot step tied to the sync `ckpt`; resolves to its detail. */
async function noticeSnapshot(): Promise<Record<string, unknown>> {
  const step = testStepContext({ timeoutMs: 30_000 });
  try {
    return await snapshotStep.run(snapshotOptionsSchema.parse({ sync: 'ckpt' }), step.context);
  } finally {
    step.dispose();
  }
}

async function restoredFile(where: SyncTree, name: string): Promise<Buffer> {
  return readFile(join(await restoredLatest(where), 'ckpt', name));
}

test('a capped sync scans a file to its end ahead of the cap and reports what it owes; the notice reads only the owed ranges and its manifest restores byte-identical', async () => {
  const where = syncTree(resources);
  const model = testBytes(8 * MIB);
  await writeFile(join(where.ckpt, 'model.pt'), model);
  const daemon = await startCapped(where);
  await until(() => daemon.syncs.status()[0]!.scannedFiles === 1, 20_000);
  const scanned = daemon.syncs.status()[0]!;
  // Read whole at once; most of its chunks owed, not sent (1 MB/s would need 8 s).
  expect(scanned.bytesRead).toBeGreaterThanOrEqual(model.length);
  expect(scanned.owedBytes).toBeGreaterThan(model.length / 2);
  expect(newPackBytes(new Map(), await packObjects(where.repo))).toBeLessThan(model.length / 2);
  const server = (await serveDaemon(daemon, { server: { enabled: true, host: '127.0.0.1', port: 0 }, readiness: { notReadyOn: [] }, steps: [] }, silentLogger()))!;
  try {
    const body = (await (await fetch(`${server.url}/v1/status`)).json()) as { syncs: Array<{ scannedFiles: number; owedBytes: number }> };
    expect(body.syncs[0]!.scannedFiles).toBe(1);
    expect(body.syncs[0]!.owedBytes).toBeGreaterThan(0);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('preemptd_sync_scanned_files{sync="ckpt"} 1');
    expect(metrics).toMatch(/^preemptd_sync_owed_bytes\{sync="ckpt"\} [1-9]\d*$/m);
  } finally {
    await server.close();
  }

  const before = await packObjects(where.repo);
  const detail = await noticeSnapshot();
  expect(detail).toMatchObject({ complete: true, bytesDone: model.length });
  // The owed ranges, not the file: owed bytes only shrink while the background pays them.
  expect(detail['bytesRead']).toBeLessThanOrEqual(scanned.owedBytes);
  expect(newPackBytes(before, await packObjects(where.repo))).toBeLessThanOrEqual(scanned.owedBytes);
  // The owed chunks went into packs, and the notice's manifest names each where it is.
  for (const file of (await latestSnapshot(where.repo)).manifest.files) if (file.type === 'file') for (const chunk of file.chunks!) expect(chunk).toHaveLength(4);
  expect((await restoredFile(where, 'model.pt')).equals(model)).toBe(true);
}, 60_000);

test('a file changed after its scan (size, mtime) is read whole by the notice, not from the stale plan', async () => {
  const where = syncTree(resources);
  await writeFile(join(where.ckpt, 'model.pt'), testBytes(8 * MIB));
  await writeFile(join(where.ckpt, 'COMPLETE'), '');
  // The marker keeps the background from scanning the changed file again: it is newer than the marker.
  const daemon = await startCapped(where, { marker: join(where.ckpt, 'COMPLETE'), settle: 0 });
  await until(() => daemon.syncs.status()[0]!.scannedFiles === 1, 20_000);
  const changed = testBytes(9 * MIB);
  await writeFile(join(where.ckpt, 'model.pt'), changed);

  const detail = await noticeSnapshot();
  expect(detail).toMatchObject({ complete: true, bytesDone: changed.length, bytesRead: changed.length });
  expect((await restoredFile(where, 'model.pt')).equals(changed)).toBe(true);
}, 60_000);

test('bytes changed under the same size and mtime are caught by the SHA-256 of the owed range: never stored under a name they do not hash to', async () => {
  const where = syncTree(resources);
  const path = join(where.ckpt, 'model.pt');
  const model = testBytes(8 * MIB);
  await writeFile(path, model);
  // Whole seconds: utimes can put them back exactly.
  const mtime = Math.floor(Date.now() / 1000) - 60;
  await utimes(path, mtime, mtime);
  const daemon = await startCapped(where);
  await until(() => daemon.syncs.status()[0]!.scannedFiles === 1, 20_000);

  // A rewrite in place of a region the cap still owes, its mtime put back.
  const altered = Buffer.from(model);
  testBytes(MIB).copy(altered, 5 * MIB);
  const handle = await open(path, 'r+');
  await handle.write(altered, 5 * MIB, MIB, 5 * MIB);
  await handle.close();
  await utimes(path, mtime, mtime);
  const info = await stat(path);
  expect({ size: info.size, mtimeMs: info.mtimeMs }).toEqual({ size: model.length, mtimeMs: mtime * 1000 });

  expect(await noticeSnapshot()).toMatchObject({ complete: true, bytesDone: model.length });
  // Every chunk the manifest names hashes to its name where it is stored.
  for (const file of (await latestSnapshot(where.repo)).manifest.files) {
    for (const [name, size, pack, offset] of file.type === 'file' ? (file.chunks as [string, number, string, number][]) : []) {
      const bytes = (await readFile(join(where.repo, 'packs', pack))).subarray(offset, offset + size);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(name);
    }
  }
  expect((await restoredFile(where, 'model.pt')).equals(altered)).toBe(true);
}, 60_000);
