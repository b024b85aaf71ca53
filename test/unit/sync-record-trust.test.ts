import { jest } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import type { ManifestFile, StoredChunk } from '../../src/snapshots/manifest.js';
import { CHUNK_REUSE_WINDOW_MS } from '../../src/snapshots/repository.js';
import { RecordTrust } from '../../src/snapshots/sync/record-trust.js';
import { SyncRecord } from '../../src/snapshots/sync/record.js';
import type { FoundFile } from '../../src/snapshots/walk.js';
import { parseLocation } from '../../src/stores/location.js';
import { openStore } from '../../src/stores/registry.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'preemptd-record-trust-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const SHA = 'ab'.repeat(32);
const file: FoundFile = { type: 'file', source: '/ckpt/step-1.pt', name: 'ckpt/step-1.pt', size: 4, mtimeMs: 1000, mode: 0o644, dev: 1, ino: 7 };
const entry: ManifestFile = { type: 'file', path: 'ckpt/step-1.pt', size: 4, mtime: new Date(1000).toISOString(), mode: 0o644, crc32: '0a1b2c3d', chunks: [[SHA, 4]] };

/** A repository whose latest.json names a manifest holding `chunks`, a record with step-1.pt stored two hours before `now`. */
async function setUp(now: number, chunks: StoredChunk[]) {
  const repo = join(dir, 'repo');
  await mkdir(join(repo, 'snapshots'), { recursive: true });
  const manifest = {
    version: 1, mode: 'dedup', checksum: 'crc32', archive: null, chunker: 'fastcdc-gear32-v1', notice: { sync: 'ckpt' }, host: {},
    startedAt: new Date(now).toISOString(), finishedAt: new Date(now).toISOString(), deadline: new Date(now).toISOString(), complete: true,
    bytesWanted: 4, bytesDone: 4, files: [{ ...entry, chunks }], skipped: [], excluded: 0,
  };
  await writeFile(join(repo, 'snapshots/s1.json'), JSON.stringify(manifest));
  await writeFile(join(repo, 'latest.json'), JSON.stringify({ version: 1, manifest: 'snapshots/s1.json', finishedAt: manifest.finishedAt }));
  const location = parseLocation(`file://${repo}/`);
  const store = await openStore(location, { partSize: 1024, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
  const record = await SyncRecord.open(join(dir, 'state'), 'ckpt', `file://${repo}/`, silentLogger());
  record.remember(file, entry, now - 2 * CHUNK_REUSE_WINDOW_MS);
  return { store, record, trust: new RecordTrust(record, store, location, silentLogger()) };
}

test('a file recorded long ago stays trusted while latest.json names its chunks, and the pointer is read at most once a minute', async () => {
  const now = Date.now();
  const { store, record, trust } = await setUp(now, [[SHA, 4]]);
  const reads = jest.spyOn(store, 'has');
  await trust.check(now);
  await trust.check(now + 30_000);
  expect(reads).toHaveBeenCalledTimes(1);
  await trust.check(now + 61_000);
  expect(reads).toHaveBeenCalledTimes(2);
  expect(record.stored(file)).toMatchObject({ chunks: [[SHA, 4]] });
});

test('a file recorded long ago whose chunks latest.json does not name is forgotten, to be read again', async () => {
  const now = Date.now();
  const { record, trust } = await setUp(now, [['cd'.repeat(32), 4]]);
  expect(record.stored(file)).toBeDefined();
  await trust.check(now);
  expect(record.stored(file)).toBeUndefined();
});

test('a file recorded long ago in one pack is forgotten when latest.json names its chunk in another: that pack is not protected', async () => {
  const now = Date.now();
  const { record, trust } = await setUp(now, [[SHA, 4, '0'.repeat(24), 0]]);
  record.remember(file, { ...entry, chunks: [[SHA, 4, '1'.repeat(24), 0]] }, now - 2 * CHUNK_REUSE_WINDOW_MS);
  await trust.check(now);
  expect(record.stored(file)).toBeUndefined();
});

test('a file recorded long ago stays trusted while latest.json names its chunk in the same pack', async () => {
  const now = Date.now();
  const { record, trust } = await setUp(now, [[SHA, 4, '0'.repeat(24), 0]]);
  record.remember(file, { ...entry, chunks: [[SHA, 4, '0'.repeat(24), 0]] }, now - 2 * CHUNK_REUSE_WINDOW_MS);
  await trust.check(now);
  expect(record.stored(file)).toMatchObject({ chunks: [[SHA, 4, '0'.repeat(24), 0]] });
});
