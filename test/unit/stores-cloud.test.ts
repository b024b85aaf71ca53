import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { silentLogger } from '../../src/lib/log.js';
import { StepFailure } from '../../src/lib/errors.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { restore } from '../../src/snapshots/restore.js';
import { manifestSchema } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { Storage } from '@google-cloud/storage';
import { openGcsStore } from '../../src/stores/gcs.js';
import { testBytes } from '../helpers/seed.js';
import { bytesGot, RANGE_CASES, rangedObject } from '../helpers/store-ranges.js';
import { startSilentProxy, type SilentProxy } from '../helpers/silent-proxy.js';
import { onePart } from '../../src/stores/parts.js';

/**
 * GCS through its own SDK against nock: no GCS emulator can run here (fake-gcs-server is a Go
 * binary). The fake below answers the wire shapes the SDK uses: JSON API resumable uploads
 * (308 between chunks, MD5 in the final metadata), media downloads with a Range as GCS answers
 * them (206 and Content-Range; 416 from past the end). Azure runs against Azurite instead
 * (test/integration/azure-store.test.ts).
 */

const MIB = 1024 * 1024;
const md5 = (data: Buffer) => createHash('md5').update(data).digest('base64');
/** Big buffers are compared by digest: jest's toEqual walks them byte by byte. */
const sha256 = (data: Buffer | undefined) => createHash('sha256').update(data ?? '').digest('hex');

let dir: string;
let step: TestStepContext | undefined;
const savedEnv = { ...process.env };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stores-cloud-'));
  await mkdir(join(dir, 'ckpt'));
  await writeFile(join(dir, 'ckpt/model.pt'), testBytes(6 * MIB));
  await writeFile(join(dir, 'ckpt/config.json'), '{"lr": 0.1}');
  nock.disableNetConnect();
});

afterEach(async () => {
  step?.dispose();
  step = undefined;
  nock.cleanAll();
  nock.enableNetConnect();
  await rm(dir, { recursive: true, force: true });
  process.env = { ...savedEnv };
});

async function runSnapshot(raw: Record<string, unknown>) {
  step = testStepContext({ timeoutMs: 20_000 });
  return snapshotStep.run(snapshotOptionsSchema.parse({ paths: [join(dir, 'ckpt')], partSize: '5MiB', ...raw }), step.context);
}

async function expectRestoredFrom(from: string, endpoint: string) {
  await restore({ from, to: join(dir, 'out'), endpoint, log: silentLogger(), signal: new AbortController().signal });
  expect(sha256(await readFile(join(dir, 'out/ckpt/model.pt')))).toBe(sha256(await readFile(join(dir, 'ckpt/model.pt'))));
  expect(await readFile(join(dir, 'out/ckpt/config.json'), 'utf8')).toBe('{"lr": 0.1}');
}

const GCS_UPDATED = '2026-04-11T22:26:58.123Z';

/** A GCS JSON API bucket in memory. `corrupt` makes it report a wrong MD5 for that object. */
function fakeGcs(bucket: string, options: { corrupt?: string } = {}) {
  const objects = new Map<string, Buffer>();
  /** When each uploaded object was written; an object a test put in `objects` itself dates from GCS_UPDATED. */
  const written = new Map<string, string>();
  const sessions = new Map<string, { name: string; chunks: Buffer[] }>();
  const chunkRanges: string[] = [];
  const scope = nock('http://gcs.test')
    .persist()
    .post(`/upload/storage/v1/b/${bucket}/o`)
    .query(true)
    .reply(async (request: Request) => {
      const name = new URL(request.url).searchParams.get('name')!;
      const id = `s${sessions.size + 1}`;
      sessions.set(id, { name, chunks: [] });
      return [200, '', { location: `http://gcs.test/upload/session/${id}` }];
    })
    .put(/^\/upload\/session\/s\d+$/)
    .reply(async (request: Request) => {
      const session = sessions.get(new URL(request.url).pathname.split('/').pop()!)!;
      const range = request.headers.get('content-range')!;
      chunkRanges.push(range);
      session.chunks.push(Buffer.from(await request.arrayBuffer()));
      const data = Buffer.concat(session.chunks);
      // GCS names no range while it holds no byte of the session (an upload status query, after a lost first chunk).
      if (range.endsWith('/*')) return [308, '', data.length ? { range: `bytes=0-${data.length - 1}` } : {}];
      objects.set(session.name, data);
      written.set(session.name, new Date().toISOString());
      const reported = session.name === options.corrupt ? md5(Buffer.from('other bytes')) : md5(data);
      return [200, { bucket, name: session.name, size: String(data.length), md5Hash: reported }];
    })
    .get(/^\/storage\/v1\/b\/[^/]+\/o\/[^/]+$/)
    .query(true)
    .reply(async (request: Request) => {
      const url = new URL(request.url);
      const name = decodeURIComponent(url.pathname.split('/').pop()!);
      const data = objects.get(name);
      if (!data) return [404, { error: { code: 404, message: 'No such object' } }];
      if (url.searchParams.get('alt') === 'media') return mediaOf(data, request.headers.get('range'));
      return [200, { bucket, name, size: String(data.length), md5Hash: md5(data), updated: written.get(name) ?? GCS_UPDATED }];
    })
    // Listings come two objects a page, whatever maxResults asks, to make the client page.
    .get(`/storage/v1/b/${bucket}/o`)
    .query(true)
    .reply(async (request: Request) => {
      const url = new URL(request.url);
      const names = [...objects.keys()].filter((name) => name.startsWith(url.searchParams.get('prefix') ?? '')).sort();
      const start = Number(url.searchParams.get('pageToken') ?? 0);
      const items = names.slice(start, start + 2).map((name) => ({ bucket, name, size: String(objects.get(name)!.length), updated: written.get(name) ?? GCS_UPDATED }));
      return [200, { kind: 'storage#objects', items, ...(start + 2 < names.length ? { nextPageToken: String(start + 2) } : {}) }];
    })
    .delete(/^\/storage\/v1\/b\/[^/]+\/o\/[^/]+$/)
    .query(true)
    .reply(async (request: Request) => {
      const name = decodeURIComponent(new URL(request.url).pathname.split('/').pop()!);
      return objects.delete(name) ? [204, ''] : [404, { error: { code: 404, message: 'No such object' } }];
    });
  return { objects, chunkRanges, scope };
}

/**
 * A media download as GCS answers it: the whole object (200), or for `bytes=first-last`,
 * `bytes=first-` or `bytes=-suffix` the bytes there are (206, Content-Range), none from past
 * the end (416).
 */
function mediaOf(data: Buffer, range: string | null) {
  const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
  const asked = /^bytes=(\d*)-(\d*)$/.exec(range ?? '');
  if (!asked || (!asked[1] && !asked[2])) return [200, data, headers] as const;
  const first = asked[1] ? Number(asked[1]) : Math.max(0, data.length - Number(asked[2]));
  const last = asked[1] && asked[2] ? Math.min(Number(asked[2]), data.length - 1) : data.length - 1;
  if (first >= data.length || last < first) {
    return [416, { error: { code: 416, message: 'The requested range cannot be satisfied.' } }, { 'content-range': `bytes */${data.length}` }] as const;
  }
  return [206, data.subarray(first, last + 1), { ...headers, 'content-range': `bytes ${first}-${last}/${data.length}` }] as const;
}

describe('GCS store (nock)', () => {
  test('uploads each file as a resumable upload in part-size chunks and restores it verified', async () => {
    const gcs = fakeGcs('ckpts');

    await runSnapshot({ to: 'gs://ckpts/run/{kind}/', endpoint: 'http://gcs.test' });

    expect([...gcs.objects.keys()].sort()).toEqual(['run/terminate/ckpt/config.json', 'run/terminate/ckpt/model.pt', 'run/terminate/manifest.json']);
    expect(gcs.chunkRanges).toContain(`bytes 0-${5 * MIB - 1}/*`);
    expect(gcs.chunkRanges).toContain(`bytes ${5 * MIB}-${6 * MIB - 1}/${6 * MIB}`);
    const manifest = manifestSchema.parse(JSON.parse(gcs.objects.get('run/terminate/manifest.json')!.toString()));
    expect(manifest.complete).toBe(true);
    await expectRestoredFrom('gs://ckpts/run/terminate/', 'http://gcs.test');
  });

  test('fails the file whose MD5 the server does not confirm', async () => {
    fakeGcs('ckpts', { corrupt: 'run/ckpt/config.json' });

    const run = runSnapshot({ to: 'gs://ckpts/run/', endpoint: 'http://gcs.test' });

    await expect(run).rejects.toBeInstanceOf(StepFailure);
    await expect(run).rejects.toThrow(/config\.json: upload failed: The uploaded data did not match the data from the server/);
  });
});

describe('GCS store (nock), dedup mode', () => {
  test('chunks go in packs; a second snapshot sends none again and writes only its manifest and pointer; restore --latest rebuilds the files', async () => {
    const gcs = fakeGcs('ckpts');
    const first = await runSnapshot({ to: 'gs://ckpts/repo/', endpoint: 'http://gcs.test', mode: 'dedup' });
    expect(first).toMatchObject({ complete: true, bytesSent: 6 * MIB + 11 });
    await rm(join(dir, 'ckpt/config.json'));
    step?.dispose();
    // 6 MiB and 11 bytes: two packs (the big file's chunks straight from the part they were
    // read in, the small file copied into the other), a manifest, the pointer; no chunk objects.
    expect([...gcs.objects.keys()].filter((key) => !key.startsWith('repo/snapshots/')).map((key) => key.replace(/[0-9a-f]{24}$/, '<id>')).sort()).toEqual(['repo/latest.json', 'repo/packs/<id>', 'repo/packs/<id>']);
    const uploads = gcs.objects.size;
    // The pointer's manifest names every chunk, with its pack: nothing is asked of the store, nothing sent.
    expect(await runSnapshot({ to: 'gs://ckpts/repo/', endpoint: 'http://gcs.test', mode: 'dedup' })).toMatchObject({ complete: true, bytesSent: 0 });
    expect(gcs.objects.size).toBe(uploads + 1);
    await restore({ from: 'gs://ckpts/repo/', latest: true, to: join(dir, 'out'), endpoint: 'http://gcs.test', log: silentLogger(), signal: new AbortController().signal });
    expect(sha256(await readFile(join(dir, 'out/ckpt/model.pt')))).toBe(sha256(await readFile(join(dir, 'ckpt/model.pt'))));
  });
});

describe('GCS store (nock): list, stat, delete', () => {
  test('lists a prefix page by page with sizes and times, stats one object and deletes, a missing key included', async () => {
    const gcs = fakeGcs('ckpts');
    for (const name of ['repo/chunks/aa/1', 'repo/chunks/bb/2', 'repo/chunks/cc/3', 'repo/latest.json', 'other/x']) gcs.objects.set(name, Buffer.from(name));
    const { openGcsStore } = await import('../../src/stores/gcs.js');
    const store = openGcsStore({ scheme: 'gs', bucket: 'ckpts', prefix: 'repo/' }, { endpoint: 'http://gcs.test', partSize: 5 * MIB, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });

    const listed = [];
    for await (const object of store.list('repo/chunks/')) listed.push(object);
    expect(listed).toEqual(['aa/1', 'bb/2', 'cc/3'].map((name) => ({ key: `repo/chunks/${name}`, size: `repo/chunks/${name}`.length, modified: Date.parse(GCS_UPDATED) })));
    expect(await store.stat('repo/latest.json')).toEqual({ key: 'repo/latest.json', size: 16, modified: Date.parse(GCS_UPDATED) });
    expect(await store.stat('repo/none')).toBeUndefined();

    await expect(store.delete(['repo/chunks/aa/1'], AbortSignal.abort(new Error('a notice')))).rejects.toThrow('a notice');
    expect(gcs.objects.has('repo/chunks/aa/1')).toBe(true);
    await store.delete(['repo/chunks/aa/1', 'repo/chunks/gone']);
    expect([...gcs.objects.keys()].sort()).toEqual(['other/x', 'repo/chunks/bb/2', 'repo/chunks/cc/3', 'repo/latest.json']);
  });
});

describe('GCS store (nock): byte ranges', () => {
  const object = rangedObject();
  const options = () => ({ endpoint: 'http://gcs.test', partSize: 5 * MIB, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });

  test('the fake answers ranges as GCS does, read by the official SDK: 206 with Content-Range, what there is past the end, 416 from past it', async () => {
    fakeGcs('ckpts').objects.set('ranged/object', object);
    const file = new Storage({ apiEndpoint: 'http://gcs.test' }).bucket('ckpts').file('ranged/object');
    const read = async (bounds: { start?: number; end?: number }) => {
      let answer: { statusCode?: number; headers: Record<string, string | undefined> } | undefined;
      const pieces: Buffer[] = [];
      const stream = file.createReadStream({ validation: false, ...bounds }).on('response', (response: typeof answer) => (answer = response));
      for await (const piece of stream) pieces.push(piece as Buffer);
      return { status: answer?.statusCode, contentRange: answer?.headers['content-range'], bytes: Buffer.concat(pieces) };
    };
    expect(await read({ start: 100, end: 299 })).toEqual({ status: 206, contentRange: 'bytes 100-299/1000', bytes: object.subarray(100, 300) });
    expect(await read({ start: 950, end: 1049 })).toEqual({ status: 206, contentRange: 'bytes 950-999/1000', bytes: object.subarray(950) });
    expect(await read({ start: 990 })).toEqual({ status: 206, contentRange: 'bytes 990-999/1000', bytes: object.subarray(990) });
    expect(await read({ end: -10 })).toEqual({ status: 206, contentRange: 'bytes 990-999/1000', bytes: object.subarray(990) });
    expect(await read({})).toEqual({ status: 200, contentRange: undefined, bytes: object });
    await expect(read({ start: 1000, end: 1009 })).rejects.toMatchObject({ code: 416 });
  });

  test.each(RANGE_CASES)('the store: $name gives its bytes of the object', async ({ range, from, to }) => {
    fakeGcs('ckpts').objects.set('ranged/object', object);
    const store = openGcsStore({ scheme: 'gs', bucket: 'ckpts', prefix: '' }, options());
    expect(await bytesGot(store, 'ranged/object', range)).toEqual(object.subarray(from, to));
  });

  test('the store: no range gives the whole object; a range of a missing object rejects', async () => {
    fakeGcs('ckpts').objects.set('ranged/object', object);
    const store = openGcsStore({ scheme: 'gs', bucket: 'ckpts', prefix: '' }, options());
    expect(await bytesGot(store, 'ranged/object')).toEqual(object);
    await expect(store.get('ranged/missing', { offset: 0, length: 10 })).rejects.toThrow('gs://ckpts/ranged/missing does not exist');
  });
});

describe('GCS store (nock behind a loopback proxy): a request the server accepts and never answers', () => {
  // A short timeout, so the test does not wait the store's own 120 s; outcomes only, no timing.
  const TIMEOUT_MS = 300;
  const options = (endpoint: string) => ({ endpoint, partSize: 5 * MIB, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
  const path = (request: { url?: string }) => request.url!.split('?')[0]!;
  let proxy: SilentProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  const setUp = async () => {
    const gcs = fakeGcs('ckpts');
    gcs.objects.set('silent/object', Buffer.from('fetched after all'));
    nock.enableNetConnect('127.0.0.1');
    const started = await startSilentProxy('http://gcs.test');
    proxy = started;
    return { gcs, proxy: started, store: openGcsStore({ scheme: 'gs', bucket: 'ckpts', prefix: '' }, options(started.url), TIMEOUT_MS) };
  };

  test('a stat is given up and retried', async () => {
    const { proxy, store } = await setUp();
    proxy.holdNext((request) => request.method === 'GET' && path(request) === '/storage/v1/b/ckpts/o/silent%2Fobject');
    expect(await store.stat('silent/object')).toMatchObject({ key: 'silent/object', size: 17 });
    expect(proxy.held).toEqual(['GET /storage/v1/b/ckpts/o/silent%2Fobject']);
  });

  test('a get is given up and retried', async () => {
    const { proxy, store } = await setUp();
    proxy.holdNext((request) => request.method === 'GET' && request.url!.includes('alt=media'));
    expect(await bytesGot(store, 'silent/object')).toEqual(Buffer.from('fetched after all'));
    expect(proxy.held).toEqual(['GET /storage/v1/b/ckpts/o/silent%2Fobject']);
  });

  test('a listing is given up and retried', async () => {
    const { proxy, store } = await setUp();
    proxy.holdNext((request) => request.method === 'GET' && path(request) === '/storage/v1/b/ckpts/o');
    const listed = [];
    for await (const info of store.list('silent/')) listed.push(info.key);
    expect(listed).toEqual(['silent/object']);
    expect(proxy.held).toEqual(['GET /storage/v1/b/ckpts/o']);
  });

  test("a put's chunk is given up and sent again", async () => {
    const { gcs, proxy, store } = await setUp();
    proxy.holdNext((request) => request.method === 'PUT' && path(request).startsWith('/upload/session/'));
    await store.put('silent/put', onePart(Buffer.from('stored after all')));
    expect(gcs.objects.get('silent/put')?.toString()).toBe('stored after all');
    expect(proxy.held).toEqual(['PUT /upload/session/s1']);
  });

  test('a put whose session is never opened rejects, naming the request that timed out', async () => {
    const { gcs, proxy, store } = await setUp();
    proxy.holdNext((request) => request.method === 'POST');
    await expect(store.put('silent/put', onePart(Buffer.from('never stored')))).rejects.toThrow(/network timeout at: http:\/\/127\.0\.0\.1:\d+\/upload\/storage\/v1\/b\/ckpts\/o/);
    expect(gcs.objects.has('silent/put')).toBe(false);
  });
});
