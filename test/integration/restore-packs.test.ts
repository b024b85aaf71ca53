import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { restore } from '../../src/snapshots/restore.js';
import { commitDedupSnapshot } from '../helpers/dedup-repository.js';
import { testBytes } from '../helpers/seed.js';

// restore --latest of repositories with packs (manifest version 2), alone or beside chunks
// stored one object each (version 1), on file:// (its get reads a range).

const KIB = 1024;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'restore-packs-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const restoreLatest = (to: string) => restore({ from: `file://${dir}/repo/`, latest: true, to, log: silentLogger(), signal: new AbortController().signal });

test('files sharing packs, files stored as chunks alone, and a file mixing both restore byte-identical; a warm restore fetches none of them again', async () => {
  const files = {
    'ckpt/packed.pt': testBytes(300 * KIB + 7),
    'ckpt/small.json': Buffer.from('{"step": 3}'),
    'ckpt/legacy.pt': testBytes(100 * KIB),
    'ckpt/mixed.pt': testBytes(200 * KIB),
  };
  commitDedupSnapshot(join(dir, 'repo'), files, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, {
    chunkBytes: 32 * KIB,
    packBytes: 128 * KIB,
    home: (index, path) => (path === 'ckpt/legacy.pt' || (path === 'ckpt/mixed.pt' && index % 3 === 1) ? 'chunk' : 'pack'),
  });
  expect((await readdir(join(dir, 'repo/packs'))).length).toBeGreaterThan(2);
  expect((await readdir(join(dir, 'repo/chunks'))).length).toBeGreaterThan(2);

  const out = join(dir, 'out');
  expect(await restoreLatest(out)).toMatchObject({ files: 4, present: 0 });
  for (const [path, content] of Object.entries(files)) expect({ path, same: (await readFile(join(out, path))).equals(content) }).toEqual({ path, same: true });
  expect(await restoreLatest(out)).toMatchObject({ files: 4, present: 4 });
});

test('several files of many packs, read into buffers the restore reuses, restore byte-identical', async () => {
  const MIB = 1024 * KIB;
  // Each file takes more requests than are fetched ahead, so later requests land in buffers earlier ones gave back.
  const files = { 'ckpt/a.pt': testBytes(14 * MIB + 1), 'ckpt/b.pt': testBytes(13 * MIB), 'ckpt/c.pt': testBytes(3 * MIB + 5), 'ckpt/d.json': testBytes(700) };
  commitDedupSnapshot(join(dir, 'repo'), files, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, { chunkBytes: 256 * KIB, packBytes: MIB, home: () => 'pack' });
  const out = join(dir, 'out');
  expect(await restoreLatest(out)).toMatchObject({ files: 4, present: 0 });
  for (const [path, content] of Object.entries(files)) expect({ path, same: (await readFile(join(out, path))).equals(content) }).toEqual({ path, same: true });
});
