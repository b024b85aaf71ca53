import nock from 'nock';
import { createLogger, silentLogger } from '../../src/lib/log.js';
import { openS3Store } from '../../src/stores/s3.js';
import type { ObjectStore } from '../../src/stores/types.js';
import { bytesGot } from '../helpers/store-ranges.js';

/**
 * A ranged GET answered 200 with the whole object: what a server or proxy that ignores Range
 * does (s3rver honors it, hence nock). The store gives the range's bytes all the same, through
 * the SDK and through its own direct GET, and says once that the server ignores ranges.
 */

const OBJECT = Buffer.from('0123456789abcdefghij');
const savedEnv = { ...process.env };
let store: ObjectStore | undefined;

beforeEach(() => {
  process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
  process.env.AWS_SECRET_ACCESS_KEY = 'secret';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  nock.disableNetConnect();
});

afterEach(async () => {
  await store?.close();
  store = undefined;
  nock.cleanAll();
  nock.enableNetConnect();
  process.env = { ...savedEnv };
});

function openStore(log = silentLogger()) {
  return (store = openS3Store(
    { scheme: 's3', bucket: 'ckpts', prefix: '' },
    { endpoint: 'http://s3.test', forcePathStyle: true, region: 'us-east-1', partSize: 5 * 1024 * 1024, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log },
  ));
}

test('a 200 to a ranged GET gives only the range, through the SDK and then directly, and is said once', async () => {
  const ranges: (string | undefined)[] = [];
  const sdk: boolean[] = [];
  nock('http://s3.test')
    .persist()
    .get('/ckpts/packs/p1')
    .query(true)
    .reply((request: Request) => {
      ranges.push(request.headers.get('range') ?? undefined);
      sdk.push(request.headers.has('amz-sdk-invocation-id'));
      return [200, OBJECT, { 'content-length': String(OBJECT.length), 'last-modified': new Date().toUTCString() }];
    });
  const lines: { level: string; msg: string }[] = [];
  const store = openStore(createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(JSON.parse(line) as { level: string; msg: string }) } }));

  expect((await bytesGot(store, 'packs/p1', { offset: 3, length: 4 })).toString()).toBe('3456');
  expect((await bytesGot(store, 'packs/p1', { offset: 15, length: 10 })).toString()).toBe('fghij');
  expect((await bytesGot(store, 'packs/p1', { offset: 0, length: 1 })).toString()).toBe('0');
  expect((await bytesGot(store, 'packs/p1')).toString()).toBe(OBJECT.toString());

  expect(ranges).toEqual(['bytes=3-6', 'bytes=15-24', 'bytes=0-0', undefined]);
  expect(sdk).toEqual([true, false, false, false]);
  expect(lines.map(({ level, msg }) => ({ level, msg }))).toEqual([{ level: 'warn', msg: 'the S3 server ignores byte ranges: each ranged read fetches the object from its start' }]);
});
