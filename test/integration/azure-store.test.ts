import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { silentLogger } from '../../src/lib/log.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { restore } from '../../src/snapshots/restore.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { openAzureStore } from '../../src/stores/azure.js';
import { onePart, type Part } from '../../src/stores/parts.js';
import { parseLocation, type AzureLocation } from '../../src/stores/location.js';
import type { ObjectStore } from '../../src/stores/types.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type AzuriteServer } from '../helpers/azurite.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { testBytes } from '../helpers/seed.js';
import { startSilentProxy } from '../helpers/silent-proxy.js';
import { until } from '../helpers/until.js';

/**
 * The Azure store (src/stores/azure.ts) through the Azure SDK against Azurite, Microsoft's
 * emulator, on loopback: it checks the SharedKey signature of every request and keeps block
 * blobs as Azure does (staged blocks invisible until a block list commits them). Nothing here
 * needs nock: every case below is one Azurite produces.
 */

const MIB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let azurite: AzuriteServer;
let dir: string;
let step: TestStepContext | undefined;
const stores: ObjectStore[] = [];
const savedKey = process.env.AZURE_STORAGE_KEY;

beforeAll(async () => {
  azurite = await startAzurite(['snapshots']);
  process.env.AZURE_STORAGE_KEY = AZURITE_KEY;
});

afterAll(async () => {
  await azurite?.close();
  if (savedKey === undefined) delete process.env.AZURE_STORAGE_KEY;
  else process.env.AZURE_STORAGE_KEY = savedKey;
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azure-store-'));
  await mkdir(join(dir, 'ckpt'));
  await writeFile(join(dir, 'ckpt/model.pt'), testBytes(6 * MIB));
  await writeFile(join(dir, 'ckpt/config.json'), '{"lr": 0.1}');
});

afterEach(async () => {
  step?.dispose();
  step = undefined;
  await Promise.all(stores.splice(0).map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

const container = () => azurite.service.getContainerClient('snapshots');

async function runSnapshot(raw: Record<string, unknown>) {
  step?.dispose();
  step = testStepContext({ timeoutMs: 30_000 });
  return snapshotStep.run(snapshotOptionsSchema.parse({ paths: [join(dir, 'ckpt')], partSize: '5MiB', endpoint: azurite.endpoint, ...raw }), step.context);
}

async function openStore(signal = new AbortController().signal): Promise<ObjectStore> {
  const location = parseLocation(`az://${AZURITE_ACCOUNT}/snapshots/`) as AzureLocation;
  const store = await openAzureStore(location, { endpoint: azurite.endpoint, partSize: 5 * MIB, queueSize: 2, concurrency: 2, signal, log: silentLogger() });
  stores.push(store);
  return store;
}

async function expectRestored(options: { from: string; latest?: boolean }) {
  await restore({ ...options, to: join(dir, 'out'), endpoint: azurite.endpoint, log: silentLogger(), signal: new AbortController().signal });
  expect(sha256(await readFile(join(dir, 'out/ckpt/model.pt')))).toBe(sha256(await readFile(join(dir, 'ckpt/model.pt'))));
  expect(await readFile(join(dir, 'out/ckpt/config.json'), 'utf8')).toBe('{"lr": 0.1}');
}

test('files mode: each file is a block blob of part-size blocks, committed, and restores verified', async () => {
  expect(await runSnapshot({ to: `az://${AZURITE_ACCOUNT}/snapshots/run/` })).toMatchObject({ complete: true });

  const names: string[] = [];
  for await (const blob of container().listBlobsFlat({ prefix: 'run/' })) names.push(blob.name);
  expect(names.sort()).toEqual(['run/ckpt/config.json', 'run/ckpt/model.pt', 'run/manifest.json']);
  const blocks = await container().getBlockBlobClient('run/ckpt/model.pt').getBlockList('all');
  expect(blocks.committedBlocks?.map((block) => block.size)).toEqual([5 * MIB, MIB]);
  expect(blocks.uncommittedBlocks).toEqual([]);
  expect(JSON.stringify(step!.logs)).not.toContain(AZURITE_KEY);
  await expectRestored({ from: `az://${AZURITE_ACCOUNT}/snapshots/run/` });
});

test('has() tells a stored blob from a missing one, and get() streams it back', async () => {
  const store = await openStore();
  expect(await store.has('objects/a.txt')).toBe(false);
  await store.put('objects/a.txt', onePart(Buffer.from('hello azurite')));
  expect(await store.has('objects/a.txt')).toBe(true);
  expect(await text(await store.get('objects/a.txt'))).toBe('hello azurite');
  await expect(store.get('objects/missing.txt')).rejects.toMatchObject({ statusCode: 404 });
});

test('delete() removes blobs, a missing one included; a stopped delete (a prune cut by a notice) removes none', async () => {
  const store = await openStore();
  await store.put('objects/a.txt', onePart(Buffer.from('a')));
  await expect(store.delete(['objects/a.txt'], AbortSignal.abort(new Error('a notice')))).rejects.toThrow('a notice');
  expect(await store.has('objects/a.txt')).toBe(true);
  await store.delete(['objects/a.txt', 'objects/never-was.txt']);
  expect(await store.has('objects/a.txt')).toBe(false);
});

/** Yields one part of `partSize`, then waits until `signal` aborts: a put cut after one staged block. */
async function* oneBlockThenStuck(signal: AbortSignal): AsyncGenerator<Part> {
  yield onePart(testBytes(5 * MIB))[0]!;
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
}

async function stagedBlocks(key: string): Promise<number> {
  try {
    return (await container().getBlockBlobClient(key).getBlockList('uncommitted')).uncommittedBlocks?.length ?? 0;
  } catch {
    return 0;
  }
}

test('cleanup() discards the blocks a cut put staged, and leaves no blob behind', async () => {
  const store = await openStore();
  const cut = new AbortController();
  const put = store.put('objects/cut.bin', oneBlockThenStuck(cut.signal), { signal: cut.signal });
  await until(async () => (await stagedBlocks('objects/cut.bin')) === 1);
  cut.abort();
  await expect(put).rejects.toMatchObject({ name: 'AbortError' });

  expect(await store.cleanup()).toEqual([]);

  expect(await stagedBlocks('objects/cut.bin')).toBe(0);
  expect(await container().getBlobClient('objects/cut.bin').exists()).toBe(false);
});

test('cleanup() never replaces a blob already committed under the key of a cut put', async () => {
  const store = await openStore();
  await store.put('objects/kept.txt', onePart(Buffer.from('committed before')));
  const cut = new AbortController();
  const put = store.put('objects/kept.txt', oneBlockThenStuck(cut.signal), { signal: cut.signal });
  await until(async () => (await stagedBlocks('objects/kept.txt')) === 1);
  cut.abort();
  await expect(put).rejects.toMatchObject({ name: 'AbortError' });

  expect(await store.cleanup()).toEqual([]);

  expect(await text(await store.get('objects/kept.txt'))).toBe('committed before');
});

test('dedup mode: chunks go in packs; a second snapshot sends none (the pointer\'s manifest names them); restore --latest rebuilds every byte', async () => {
  // The big file first, one file at a time: the deadline gate's rate, measured from the first
  // byte, would otherwise count a loaded machine's pause after the 11-byte file against it.
  const options = { to: `az://${AZURITE_ACCOUNT}/snapshots/repo/`, mode: 'dedup', priority: 'largest', concurrency: 1 };
  expect(await runSnapshot(options)).toMatchObject({ complete: true, bytesSent: 6 * MIB + 11 });
  const packs = async () => {
    const names: string[] = [];
    for await (const blob of container().listBlobsFlat({ prefix: 'repo/packs/' })) names.push(blob.name);
    return names;
  };
  // The 6 MiB file's chunks, read in one part, are a pack straight from it; the 11-byte file is copied into another.
  expect(await packs()).toHaveLength(2);

  expect(await runSnapshot(options)).toMatchObject({ complete: true, bytesSent: 0 });

  expect(await packs()).toHaveLength(2);
  await expectRestored({ from: options.to, latest: true });
});

describe('a request Azure accepts and never answers fails, named, instead of holding the store for good', () => {
  // A short answer timeout so the test does not wait the store's own 60 s; outcomes only.
  const cases: [string, (request: { method?: string; url?: string }) => boolean, (store: ObjectStore) => Promise<unknown>, string][] = [
    ['a HEAD', (request) => request.method === 'HEAD', (store) => store.stat('silent/kept.txt'), 'HEAD silent/kept.txt'],
    ['a GET', (request) => request.method === 'GET' && !request.url!.includes('comp=list'), (store) => store.get('silent/kept.txt'), 'GET silent/kept.txt'],
    ['a listing page', (request) => request.method === 'GET' && request.url!.includes('comp=list'), async (store) => {
      for await (const object of store.list('silent/')) void object;
    }, 'listing silent/'],
    ['a DELETE', (request) => request.method === 'DELETE', (store) => store.delete(['silent/kept.txt']), 'DELETE silent/kept.txt'],
  ];
  test.each(cases)('%s', async (_, picks, operation, what) => {
    const proxy = await startSilentProxy(azurite.endpoint);
    try {
      const location = parseLocation(`az://${AZURITE_ACCOUNT}/snapshots/`) as AzureLocation;
      const store = await openAzureStore(location, { endpoint: proxy.url, partSize: 5 * MIB, queueSize: 2, concurrency: 2, signal: new AbortController().signal, log: silentLogger() }, 300);
      stores.push(store);
      await store.put('silent/kept.txt', onePart(Buffer.from('stays')));
      proxy.holdNext(picks);
      await expect(operation(store)).rejects.toMatchObject({ code: 'ERR_STORE', message: `${what} (az://${AZURITE_ACCOUNT}/snapshots/): Azure sent no answer within 0.3 s` });
      expect(proxy.held).toHaveLength(1);
      expect(await text(await store.get('silent/kept.txt'))).toBe('stays');
    } finally {
      await proxy.close();
    }
  });
});
