import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { writeJson } from '../../src/snapshots/repository.js';
import { readStoredJson } from '../../src/snapshots/stored-json.js';
import { parseLocation } from '../../src/stores/location.js';
import { openStore } from '../../src/stores/registry.js';
import { z } from 'zod';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'preemptd-repository-json-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function fileStore() {
  const location = parseLocation(`file://${dir}/`);
  return { location, store: await openStore(location, { partSize: 1024, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() }) };
}

test('a manifest is stored without indentation (112 bytes a packed chunk, not 170) and reads back', async () => {
  const { store, location } = await fileStore();
  const chunk = ['ab'.repeat(32), 131072, 'cd'.repeat(12), 262144];
  await writeJson(store, location, 'snapshots/a.json', { files: [{ chunks: [chunk] }] });
  const text = await readFile(join(dir, 'snapshots/a.json'), 'utf8');
  expect(text).toBe(`${JSON.stringify({ files: [{ chunks: [chunk] }] })}\n`);
  await expect(readStoredJson(store, location, 'snapshots/a.json', z.object({ files: z.array(z.unknown()) }), 'a test object')).resolves.toEqual({ files: [{ chunks: [chunk] }] });
});

test('one larger than a restore reads is refused, named, and nothing is stored', async () => {
  const { store, location } = await fileStore();
  const value = { files: 'x'.repeat(200) };
  await expect(writeJson(store, location, 'snapshots/big.json', value, 100)).rejects.toMatchObject({
    code: 'ERR_STORE',
    message: expect.stringMatching(/^snapshots\/big\.json not stored: it takes 2\d\d B, over the 100 B a restore reads \(too many chunks/),
  });
  expect(await readdir(dir)).toEqual([]);
});
