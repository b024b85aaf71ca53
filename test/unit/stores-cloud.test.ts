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
import { testBytes } from '../helpers/seed.js';

/**
 * GCS and Azure through their own SDKs against nock: no emulator can run here (fake-gcs-server
 * is a Go binary, Azurite an npm package we may not install). The fakes below answer the
 * wire shapes the SDKs use: GCS JSON API resumable uploads (308 between chunks, MD5 in the
 * final metadata) and Azure block blobs (Put Block, Put Block List, Get Blob).
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
      if (range.endsWith('/*')) return [308, '', { range: `bytes=0-${data.length - 1}` }];
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
      if (url.searchParams.get('alt') === 'media') return [200, data, { 'content-type': 'application/octet-stream' }];
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

/** An Azure block blob container in memory, checking that requests are signed with the shared key. */
function fakeAzure(account: string, container: string) {
  const blocks = new Map<string, Buffer>();
  const blobs = new Map<string, Buffer>();
  const authorizations: string[] = [];
  const blobPath = new RegExp(`^/${account}/${container}/(.+)$`);
  const scope = nock('http://azure.test')
    .persist()
    .put(blobPath)
    .query(true)
    .reply(async (request: Request) => {
      authorizations.push(request.headers.get('authorization') ?? '');
      const url = new URL(request.url);
      const name = decodeURIComponent(blobPath.exec(url.pathname)![1]!);
      const body = Buffer.from(await request.arrayBuffer());
      if (url.searchParams.get('comp') === 'block') {
        blocks.set(`${name}\0${url.searchParams.get('blockid')}`, body);
        return [201, ''];
      }
      if (url.searchParams.get('comp') === 'blocklist') {
        const ids = [...body.toString().matchAll(/<Latest>([^<]+)<\/Latest>/g)].map((match) => match[1]!);
        blobs.set(name, Buffer.concat(ids.map((id) => blocks.get(`${name}\0${id}`)!)));
        return [201, '', { etag: '"0x1"', 'last-modified': new Date().toUTCString() }];
      }
      blobs.set(name, body);
      return [201, '', { etag: '"0x1"' }];
    })
    .get(blobPath)
    .query(true)
    .reply(async (request: Request) => {
      const name = decodeURIComponent(blobPath.exec(new URL(request.url).pathname)![1]!);
      const data = blobs.get(name);
      if (!data) return [404, '<?xml version="1.0"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>', { 'x-ms-error-code': 'BlobNotFound' }];
      return [200, data, { 'content-length': String(data.length), 'x-ms-blob-type': 'BlockBlob', etag: '"0x1"' }];
    })
    .head(blobPath)
    .query(true)
    .reply(async (request: Request) => {
      const data = blobs.get(decodeURIComponent(blobPath.exec(new URL(request.url).pathname)![1]!));
      if (!data) return [404, '', { 'x-ms-error-code': 'BlobNotFound' }];
      return [200, '', { 'content-length': String(data.length), 'x-ms-blob-type': 'BlockBlob', etag: '"0x1"' }];
    });
  return { blobs, blocks, authorizations, scope };
}

describe('GCS store (nock), dedup mode', () => {
  test('a second snapshot asks which chunks exist and sends none again; restore --latest rebuilds the files', async () => {
    const gcs = fakeGcs('ckpts');
    const first = await runSnapshot({ to: 'gs://ckpts/repo/', endpoint: 'http://gcs.test', mode: 'dedup' });
    expect(first).toMatchObject({ complete: true, bytesSent: 6 * MIB + 11 });
    await rm(join(dir, 'ckpt/config.json'));
    step?.dispose();
    const uploads = gcs.objects.size;
    // Without the pointer's manifest the chunks are not known: has() must find each one stored.
    gcs.objects.delete('repo/latest.json');
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

    await store.delete(['repo/chunks/aa/1', 'repo/chunks/gone']);
    expect([...gcs.objects.keys()].sort()).toEqual(['other/x', 'repo/chunks/bb/2', 'repo/chunks/cc/3', 'repo/latest.json']);
  });
});

describe('Azure Blob store (nock)', () => {
  test('dedup mode: has() answers from HEAD Blob, so a second snapshot sends nothing again', async () => {
    process.env.AZURE_STORAGE_KEY = Buffer.from('not-a-real-key-just-for-tests').toString('base64');
    const azure = fakeAzure('ckptacct', 'snapshots');
    const options = { to: 'az://ckptacct/snapshots/repo/', endpoint: 'http://azure.test/ckptacct', mode: 'dedup' };
    expect(await runSnapshot(options)).toMatchObject({ complete: true, bytesSent: 6 * MIB + 11 });
    step?.dispose();
    azure.blobs.delete('repo/latest.json');
    expect(await runSnapshot(options)).toMatchObject({ complete: true, bytesSent: 0 });
    expect(azure.blobs.has('repo/latest.json')).toBe(true);
  });

  test('stages blocks of part size, commits the block list, and restores it verified', async () => {
    process.env.AZURE_STORAGE_KEY = Buffer.from('not-a-real-key-just-for-tests').toString('base64');
    const azure = fakeAzure('ckptacct', 'snapshots');

    await runSnapshot({ to: 'az://ckptacct/snapshots/run/', endpoint: 'http://azure.test/ckptacct' });

    expect([...azure.blobs.keys()].sort()).toEqual(['run/ckpt/config.json', 'run/ckpt/model.pt', 'run/manifest.json']);
    expect(sha256(azure.blobs.get('run/ckpt/model.pt'))).toBe(sha256(await readFile(join(dir, 'ckpt/model.pt'))));
    expect([...azure.blocks.keys()].filter((key) => key.startsWith('run/ckpt/model.pt\0'))).toHaveLength(2);
    expect(azure.authorizations.every((value) => value.startsWith('SharedKey ckptacct:'))).toBe(true);
    expect(JSON.stringify(step!.logs)).not.toContain(process.env.AZURE_STORAGE_KEY);
    await expectRestoredFrom('az://ckptacct/snapshots/run/', 'http://azure.test/ckptacct');
  });
});
