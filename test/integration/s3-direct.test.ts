import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout } from 'node:timers/promises';
import { silentLogger } from '../../src/lib/log.js';
import { crc32 } from '@node-rs/crc32';
import { crc32Header, onePart } from '../../src/stores/parts.js';
import { readInto } from '../../src/stores/read-into.js';
import { openS3Store } from '../../src/stores/s3.js';
import { S3_CREDENTIALS, startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { testBytes } from '../helpers/seed.js';

// After the first GetObject (and the first single-part PutObject), the S3 store sends GETs
// (and such PUTs) itself, signed with the SDK's SigV4 signer (src/stores/s3-direct.ts). A
// recording proxy in front of s3rver, which checks every signature, shows who sent each
// request and what s3rver answered.

interface Seen {
  method: string;
  path: string;
  /** The SDK marks each of its requests with an invocation id. */
  sdk: boolean;
  /** 0: the proxy held the request and never answered it. */
  status: number;
  headers: IncomingHttpHeaders;
}

let s3: S3TestServer;
let proxy: Server;
let seen: Seen[];
/** The proxy answers the next direct PUT with 503 SlowDown itself. */
let refuseDirectPut = false;
/**
 * The proxy holds the next direct request of this method: it never answers it (`request`), or
 * sends the head of s3rver's answer and its first piece of body, then nothing (`body`).
 */
let holdDirect: { method: string; after: 'request' | 'body' } | undefined;
/** The proxy never answers the next request of this method the SDK makes. */
let holdSdk: string | undefined;
const savedEnv = { ...process.env };

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  s3 = await startS3Server();
  const target = new URL(s3.endpoint);
  proxy = createServer((incoming, outgoing) => {
    if (refuseDirectPut && incoming.method === 'PUT' && !('amz-sdk-invocation-id' in incoming.headers)) {
      refuseDirectPut = false;
      seen.push({ method: 'PUT', path: decodeURIComponent(incoming.url!.split('?')[0]!), sdk: false, status: 503, headers: incoming.headers });
      incoming.resume();
      outgoing.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>');
      return;
    }
    if (holdSdk === incoming.method && 'amz-sdk-invocation-id' in incoming.headers) {
      holdSdk = undefined;
      seen.push({ method: incoming.method!, path: decodeURIComponent(incoming.url!.split('?')[0]!), sdk: true, status: 0, headers: incoming.headers });
      incoming.resume();
      return;
    }
    const held = holdDirect?.method === incoming.method && !('amz-sdk-invocation-id' in incoming.headers) ? holdDirect : undefined;
    if (held) holdDirect = undefined;
    if (held?.after === 'request') {
      seen.push({ method: incoming.method!, path: decodeURIComponent(incoming.url!.split('?')[0]!), sdk: false, status: 0, headers: incoming.headers });
      incoming.resume();
      return;
    }
    const forwarded = request({ host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers }, (answer) => {
      if (incoming.method === 'GET' || incoming.method === 'PUT' || incoming.method === 'HEAD') {
        seen.push({ method: incoming.method, path: decodeURIComponent(incoming.url!.split('?')[0]!), sdk: 'amz-sdk-invocation-id' in incoming.headers, status: answer.statusCode!, headers: incoming.headers });
      }
      outgoing.writeHead(answer.statusCode!, answer.headers);
      if (!held) answer.pipe(outgoing);
      else
        answer.once('data', (piece: Buffer) => {
          answer.pause();
          outgoing.write(piece);
        });
    });
    incoming.pipe(forwarded);
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
});

afterAll(async () => {
  proxy.closeAllConnections();
  proxy.close();
  await s3.close();
  process.env = { ...savedEnv };
});

beforeEach(() => {
  seen = [];
});

/** `idleTimeoutMs`: how long a direct request (and one through the SDK) may be silent (the store's own defaults unless a test shortens them). */
function openStore(idleTimeoutMs?: number) {
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return openS3Store(
    { scheme: 's3', bucket: s3.bucket, prefix: '' },
    { endpoint, forcePathStyle: true, region: 'us-east-1', partSize: 8 * 1024 * 1024, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() },
    idleTimeoutMs === undefined ? {} : { directIdleMs: idleTimeoutMs, sdkIdleMs: idleTimeoutMs },
  );
}

async function text(body: AsyncIterable<unknown>): Promise<string> {
  const pieces: Buffer[] = [];
  for await (const piece of body) pieces.push(piece as Buffer);
  return Buffer.concat(pieces).toString('utf8');
}

test('PUTs and GETs after the first are sent directly, signed so that s3rver accepts them, keys with any characters included', async () => {
  const store = openStore();
  const keys = ['direct/first.json', "direct/a b+c (1)!*'.pt", 'direct/ünï/çödé~.bin', 'direct/chunks/ab/abcdef'];
  for (const key of keys) await store.put(key, onePart(Buffer.from(`content of ${key}`)));
  for (const key of keys) expect(await text(await store.get(key))).toBe(`content of ${key}`);
  await store.close();
  const sent = (method: string) => keys.map((key, index) => ({ method, path: `/${s3.bucket}/${key}`, sdk: index === 0, status: 200 }));
  expect(seen.map(({ headers, ...request }) => request)).toEqual([...sent('PUT'), ...sent('GET')]);
});

test('a direct PUT carries the CRC32 of its bytes (S3 checks it), and its payload is not hashed again', async () => {
  const store = openStore();
  const bytes = Buffer.from('the bytes sent');
  await store.put('crc/first', onePart(Buffer.from('learns the template')));
  await store.put('crc/second', onePart(bytes));
  await store.close();
  expect(seen.map(({ sdk }) => sdk)).toEqual([true, false]);
  expect(seen[1]!.headers['x-amz-checksum-crc32']).toBe(crc32Header(crc32(bytes)));
  expect(seen[1]!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
});

test('HEADs after the first are sent directly: the size and time of a stored object, and a missing key', async () => {
  const store = openStore();
  await store.put('head/there', onePart(Buffer.from('five!')));
  const viaSdk = await store.stat('head/missing-first');
  const there = await store.stat('head/there');
  const missing = await store.stat('head/missing');
  await store.close();
  expect(viaSdk).toBeUndefined();
  expect(there).toEqual({ key: 'head/there', size: 5, modified: expect.any(Number) as number });
  expect(Math.abs(there!.modified - Date.now())).toBeLessThan(60_000);
  expect(missing).toBeUndefined();
  expect(seen.filter(({ method }) => method === 'HEAD').map(({ sdk, status }) => ({ sdk, status }))).toEqual([
    { sdk: true, status: 404 },
    { sdk: false, status: 200 },
    { sdk: false, status: 404 },
  ]);
});

test('a direct PUT answered with anything but a 200 is made again through the SDK', async () => {
  const store = openStore();
  await store.put('slow/first', onePart(Buffer.from('learns the template')));
  refuseDirectPut = true;
  await store.put('slow/second', onePart(Buffer.from('stored after all')));
  expect(await text(await store.get('slow/second'))).toBe('stored after all');
  await store.close();
  expect(seen.filter(({ method }) => method === 'PUT').map(({ sdk, status }) => ({ sdk, status }))).toEqual([
    { sdk: true, status: 200 },
    { sdk: false, status: 503 },
    { sdk: true, status: 200 },
  ]);
});

test('anything but a 200 is left to the SDK: a missing key is its NoSuchKey', async () => {
  const store = openStore();
  await store.put('fallback/there', onePart(Buffer.from('x')));
  await text(await store.get('fallback/there'));
  await expect(store.get('fallback/missing')).rejects.toMatchObject({ name: 'NoSuchKey' });
  await store.close();
  expect(seen.filter(({ method }) => method === 'GET').map(({ sdk, status }) => ({ sdk, status }))).toEqual([
    { sdk: true, status: 200 },
    { sdk: false, status: 404 },
    { sdk: true, status: 404 },
  ]);
});

test('a ranged GET teaches the store the request as a whole GET does: the next ones are sent directly with their Range, answered 206', async () => {
  const store = openStore();
  await store.put('ranged/object', onePart(Buffer.from('0123456789')));
  expect(await text(await store.get('ranged/object', { offset: 2, length: 3 }))).toBe('234');
  expect(await text(await store.get('ranged/object', { offset: 7, length: 3 }))).toBe('789');
  await store.close();
  expect(seen.filter(({ method }) => method === 'GET').map(({ sdk, status, headers }) => ({ sdk, status, range: headers.range }))).toEqual([
    { sdk: true, status: 206, range: 'bytes=2-4' },
    { sdk: false, status: 206, range: 'bytes=7-9' },
  ]);
});

describe('a direct request the server accepts and never answers is abandoned once idle, and made through the SDK', () => {
  // A short idle timeout, so the test does not wait the store's own 5 s; outcomes only, no timing.
  const IDLE_MS = 300;
  const requestsFor = (key: string) => seen.filter(({ path }) => path === `/${s3.bucket}/${key}`).map(({ method, sdk, status }) => ({ method, sdk, status }));

  test('GET', async () => {
    const store = openStore(IDLE_MS);
    await store.put('idle/get', onePart(Buffer.from('fetched after all')));
    await text(await store.get('idle/get'));
    holdDirect = { method: 'GET', after: 'request' };
    expect(await text(await store.get('idle/get'))).toBe('fetched after all');
    await store.close();
    expect(requestsFor('idle/get').filter(({ method }) => method === 'GET')).toEqual([
      { method: 'GET', sdk: true, status: 200 },
      { method: 'GET', sdk: false, status: 0 },
      { method: 'GET', sdk: true, status: 200 },
    ]);
  });

  test('HEAD', async () => {
    const store = openStore(IDLE_MS);
    await store.put('idle/head', onePart(Buffer.from('four')));
    await store.stat('idle/learn');
    holdDirect = { method: 'HEAD', after: 'request' };
    expect(await store.stat('idle/head')).toMatchObject({ key: 'idle/head', size: 4 });
    await store.close();
    expect(requestsFor('idle/head').filter(({ method }) => method === 'HEAD')).toEqual([
      { method: 'HEAD', sdk: false, status: 0 },
      { method: 'HEAD', sdk: true, status: 200 },
    ]);
  });

  test('and a request through the SDK the server never answers is given up once idle too, then retried by the SDK', async () => {
    const store = openStore(IDLE_MS);
    holdSdk = 'PUT';
    await store.put('idle/sdk', onePart(Buffer.from('stored on the retry')));
    expect(await text(await store.get('idle/sdk'))).toBe('stored on the retry');
    await store.close();
    expect(requestsFor('idle/sdk').filter(({ method }) => method === 'PUT')).toEqual([
      { method: 'PUT', sdk: true, status: 0 },
      { method: 'PUT', sdk: true, status: 200 },
    ]);
  });

  test('PUT', async () => {
    const store = openStore(IDLE_MS);
    await store.put('idle/learn', onePart(Buffer.from('learns the template')));
    holdDirect = { method: 'PUT', after: 'request' };
    await store.put('idle/put', onePart(Buffer.from('stored after all')));
    expect(await text(await store.get('idle/put'))).toBe('stored after all');
    await store.close();
    expect(requestsFor('idle/put').filter(({ method }) => method === 'PUT')).toEqual([
      { method: 'PUT', sdk: false, status: 0 },
      { method: 'PUT', sdk: true, status: 200 },
    ]);
  });

  test('a reader that pauses longer than that (a slow disk) still gets every byte: only a silent server is given up on', async () => {
    const store = openStore(IDLE_MS);
    // More than the reader's buffer (so the socket is paused), little enough to have all come by the time the reader reads.
    const bytes = testBytes(256 * 1024);
    await store.put('idle/slow-reader', onePart(bytes));
    await text(await store.get('idle/slow-reader'));
    const body = await store.get('idle/slow-reader');
    await setTimeout(3 * IDLE_MS);
    const pieces: Buffer[] = [];
    for await (const piece of body) pieces.push(piece as Buffer);
    await store.close();
    expect(Buffer.concat(pieces).equals(bytes)).toBe(true);
    expect(requestsFor('idle/slow-reader').filter(({ method }) => method === 'GET')).toEqual([
      { method: 'GET', sdk: true, status: 200 },
      { method: 'GET', sdk: false, status: 200 },
    ]);
  });

  test('a body that stalls after its answer came fails the read, naming the request', async () => {
    const store = openStore(IDLE_MS);
    await store.put('idle/body', onePart(testBytes(256 * 1024)));
    await text(await store.get('idle/body'));
    holdDirect = { method: 'GET', after: 'body' };
    await expect(text(await store.get('idle/body'))).rejects.toThrow(`GET idle/body: the S3 server sent nothing for ${IDLE_MS} ms`);
    await store.close();
  });

  test('so does one the server stops sending while its reader was paused, once the reader has taken what came', async () => {
    const store = openStore(IDLE_MS);
    await store.put('idle/paused-body', onePart(testBytes(256 * 1024)));
    await text(await store.get('idle/paused-body'));
    holdDirect = { method: 'GET', after: 'body' };
    const body = await store.get('idle/paused-body');
    await setTimeout(3 * IDLE_MS);
    await expect(text(body)).rejects.toThrow(`GET idle/paused-body: the S3 server sent nothing for ${IDLE_MS} ms`);
    await store.close();
  });
});

describe('a GET into a buffer (restore) is sent directly once learnt, straight into the buffer; anything else is fetched again with get', () => {
  const IDLE_MS = 300;
  const gets = (key: string) => seen.filter(({ method, path }) => method === 'GET' && path === `/${s3.bucket}/${key}`).map(({ sdk, status }) => ({ sdk, status }));

  test('a range of exactly the buffer, after the first GET', async () => {
    const store = openStore();
    const content = testBytes(1024 * 1024);
    await store.put('into/pack', onePart(content));
    const into = Buffer.alloc(300_000);
    expect(await store.getInto!('into/pack', { offset: 5, length: into.length }, into)).toBeUndefined();
    expect(await readInto(store, 'into/pack', { offset: 5, length: into.length }, into)).toEqual({ length: into.length, more: false });
    into.fill(0);
    expect(await store.getInto!('into/pack', { offset: 700_000, length: into.length }, into)).toEqual({ length: into.length, more: false });
    expect(into.equals(content.subarray(700_000, 1_000_000))).toBe(true);
    await store.close();
    expect(gets('into/pack')).toEqual([
      { sdk: true, status: 206 },
      { sdk: false, status: 206 },
    ]);
  });

  test('an answer of another length (a range past the end of the object) is read again with get: what there is, and no more', async () => {
    const store = openStore();
    await store.put('into/short', onePart(Buffer.from('0123456789')));
    await readInto(store, 'into/short', { offset: 0, length: 4 }, Buffer.alloc(4));
    const into = Buffer.alloc(5);
    expect(await readInto(store, 'into/short', { offset: 8, length: 5 }, into)).toEqual({ length: 2, more: false });
    expect(into.subarray(0, 2).toString()).toBe('89');
    await store.close();
    expect(gets('into/short')).toEqual([
      { sdk: true, status: 206 },
      { sdk: false, status: 206 },
      { sdk: false, status: 206 },
    ]);
  });

  test.each(['request', 'body'] as const)('a direct GET into a buffer the server goes silent on (after the %s) is made again with get', async (after) => {
    const store = openStore(IDLE_MS);
    const content = testBytes(256 * 1024);
    await store.put(`into/held-${after}`, onePart(content));
    await readInto(store, `into/held-${after}`, undefined, Buffer.alloc(content.length));
    holdDirect = { method: 'GET', after };
    const into = Buffer.alloc(content.length);
    expect(await readInto(store, `into/held-${after}`, undefined, into)).toEqual({ length: content.length, more: false });
    expect(into.equals(content)).toBe(true);
    await store.close();
    expect(gets(`into/held-${after}`)).toEqual([
      { sdk: true, status: 200 },
      { sdk: false, status: after === 'request' ? 0 : 200 },
      { sdk: false, status: 200 },
    ]);
  });
});
