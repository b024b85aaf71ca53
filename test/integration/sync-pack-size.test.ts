import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { TransferProgress } from '../../src/snapshots/progress.js';
import { FileReader } from '../../src/snapshots/read.js';
import { payOwed, scanFiles, type PassIO } from '../../src/snapshots/sync/scan.js';
import { TokenBucket } from '../../src/snapshots/sync/token-bucket.js';
import { walkPaths } from '../../src/snapshots/walk.js';
import { openFileStore } from '../../src/stores/file.js';
import { TestResources } from '../helpers/resources.js';
import { testBytes } from '../helpers/seed.js';
import { packObjects, syncTree } from '../helpers/sync-daemon.js';

const resources = new TestResources('preemptd-sync-pack-size-');
afterAll(() => resources.cleanUp());

const MIB = 1024 * 1024;

/** One background pass over a 6 MiB file (scan, then what the cap held back): the packs it wrote, and the file's entry. */
async function pass(cap: number | null) {
  const where = syncTree(resources);
  const model = testBytes(6 * MIB);
  await writeFile(join(where.ckpt, 'model.pt'), model);
  const store = openFileStore({ scheme: 'file', directory: where.repo, prefix: '' }, { partSize: 8 * MIB, queueSize: 4, concurrency: 2, signal: new AbortController().signal, log: silentLogger() });
  const reader = FileReader.start();
  try {
    const io: PassIO = { store, location: { scheme: 'file', directory: where.repo, prefix: '' }, reader, bucket: new TokenBucket(cap), signal: new AbortController().signal };
    const { entries } = await walkPaths([where.ckpt], [], io.signal);
    const scanned = await scanFiles(entries, new Map(), new TransferProgress(0), io);
    const owed = await payOwed(scanned.planned ?? [], new TransferProgress(0), io);
    const entry = [...scanned.files, ...owed.done.map((plan) => plan.entry)][0]!;
    return { model, packs: await packObjects(where.repo), entry: entry.type === 'file' ? entry : undefined, repo: where.repo };
  } finally {
    await reader.close();
    await store.close();
  }
}

/** Each chunk the entry names reads back from its pack and range with its SHA-256, and together they are the file. */
async function expectEachChunkWhereItsEntrySays(entry: { chunks?: unknown } | undefined, repo: string, model: Buffer): Promise<void> {
  const rebuilt: Buffer[] = [];
  for (const [sha256, size, pack, offset] of entry!.chunks as [string, number, string, number][]) {
    const bytes = (await readFile(join(repo, 'packs', pack))).subarray(offset, offset + size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
    rebuilt.push(bytes);
  }
  expect(Buffer.concat(rebuilt).equals(model)).toBe(true);
}

test('a capped pass fills packs to half a second of its cap (no burst past the cap), each chunk stored once where its entry says', async () => {
  const { model, packs, entry, repo } = await pass(4e6);
  const sizes = [...packs.values()].map((pack) => pack.size);
  expect(sizes.length).toBeGreaterThan(2);
  for (const size of sizes) expect(size).toBeLessThanOrEqual(2e6);
  expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(model.length);
  await expectEachChunkWhereItsEntrySays(entry, repo, model);
}, 30_000);

test('an uncapped pass stores runs of new chunks straight from the parts they were read in: a 6 MiB file is a few packs, at most one (what was copied) under 1 MiB, each chunk where its entry says', async () => {
  const { model, packs, entry, repo } = await pass(null);
  const sizes = [...packs.values()].map((pack) => pack.size);
  expect(sizes.length).toBeLessThanOrEqual(4);
  expect(sizes.filter((size) => size < MIB).length).toBeLessThanOrEqual(1);
  expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(model.length);
  await expectEachChunkWhereItsEntrySays(entry, repo, model);
});
