import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { openAzureStore } from '../../src/stores/azure.js';
import { openFileStore } from '../../src/stores/file.js';
import { parseLocation, type AzureLocation } from '../../src/stores/location.js';
import { onePart } from '../../src/stores/parts.js';
import { readInto } from '../../src/stores/read-into.js';
import { openS3Store } from '../../src/stores/s3.js';
import { startDiscardSink, type DiscardSink } from '../../bench/lib/discard-sink.js';
import type { ObjectStore, StoreOptions } from '../../src/stores/types.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type AzuriteServer } from '../helpers/azurite.js';
import { S3_CREDENTIALS, startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { bytesGot, RANGE_CASES, rangedObject } from '../helpers/store-ranges.js';

/**
 * `get(key, range)` on the stores that run here for real: S3 (s3rver, through the SDK and
 * through the store's own direct GET), Azure (Azurite) and file://; and the bench's S3 discard
 * sink, which a restore bench reads packs from by range. GCS: test/unit/stores-cloud.test.ts.
 */

const storeOptions = (): StoreOptions => ({ partSize: 5 * 1024 * 1024, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
const object = rangedObject();
const savedEnv = { ...process.env };

afterAll(() => {
  process.env = { ...savedEnv };
});

/** The range cases against a store holding `object` as `ranged/object`; `open` gives the store each case reads with. */
function rangeCases(open: () => Promise<ObjectStore>) {
  test.each(RANGE_CASES)('$name gives its bytes of the object', async ({ range, from, to }) => {
    const store = await open();
    expect(await bytesGot(store, 'ranged/object', range)).toEqual(object.subarray(from, to));
  });

  test('no range gives the whole object; a range of a missing object rejects', async () => {
    const store = await open();
    expect(await bytesGot(store, 'ranged/object')).toEqual(object);
    await expect(store.get('ranged/missing', { offset: 0, length: 10 })).rejects.toThrow();
  });

  test.each(RANGE_CASES)('$name read into a buffer of its length gives its bytes of the object', async ({ range, from, to }) => {
    const store = await open();
    const into = Buffer.alloc(range.length);
    expect(await readInto(store, 'ranged/object', range, into)).toEqual({ length: to - from, more: false });
    expect(into.subarray(0, to - from)).toEqual(object.subarray(from, to));
  });

  test('the whole object read into a buffer of its size, or of one byte less (more: true)', async () => {
    const store = await open();
    const into = Buffer.alloc(object.length);
    expect(await readInto(store, 'ranged/object', undefined, into)).toEqual({ length: object.length, more: false });
    expect(into).toEqual(object);
    const short = Buffer.alloc(object.length - 1);
    expect(await readInto(store, 'ranged/object', undefined, short)).toEqual({ length: short.length, more: true });
    expect(short).toEqual(object.subarray(0, short.length));
    await expect(readInto(store, 'ranged/missing', { offset: 0, length: 10 }, Buffer.alloc(10))).rejects.toThrow();
  });
}

describe('S3 store against s3rver', () => {
  let server: S3TestServer;
  const stores: ObjectStore[] = [];
  const openStore = () => {
    const store = openS3Store({ scheme: 's3', bucket: server.bucket, prefix: '' }, { ...storeOptions(), endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    server = await startS3Server();
    await openStore().put('ranged/object', onePart(object));
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await server.close();
  });

  describe('through the SDK (the first GET of a store)', () => rangeCases(async () => openStore()));

  describe('sent directly (after a first ranged GET taught the store the request)', () => {
    let warm: ObjectStore;
    beforeAll(async () => {
      warm = openStore();
      await bytesGot(warm, 'ranged/object', { offset: 0, length: 1 });
    });
    rangeCases(async () => warm);
  });
});

describe("S3 store against the bench's discard sink, keeping what is put", () => {
  let sink: DiscardSink;
  let store: ObjectStore;
  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    sink = await startDiscardSink({ keep: true });
    store = openS3Store({ scheme: 's3', bucket: 'bench', prefix: '' }, { ...storeOptions(), endpoint: sink.endpoint, forcePathStyle: true, region: 'us-east-1' });
    await store.put('ranged/object', onePart(object));
  });
  afterAll(async () => {
    await store.close();
    await sink.close();
  });

  rangeCases(async () => store);
});

describe('Azure store against Azurite', () => {
  let azurite: AzuriteServer;
  const stores: ObjectStore[] = [];
  beforeAll(async () => {
    azurite = await startAzurite(['snapshots']);
    process.env.AZURE_STORAGE_KEY = AZURITE_KEY;
    await azurite.service.getContainerClient('snapshots').getBlockBlobClient('ranged/object').uploadData(object);
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await azurite?.close();
  });

  rangeCases(async () => {
    const location = parseLocation(`az://${AZURITE_ACCOUNT}/snapshots/`) as AzureLocation;
    const store = await openAzureStore(location, { ...storeOptions(), endpoint: azurite.endpoint });
    stores.push(store);
    return store;
  });
});

describe('file store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'store-ranges-'));
    await openFileStore({ scheme: 'file', directory: dir, prefix: '' }, storeOptions()).put('ranged/object', onePart(object));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  rangeCases(async () => openFileStore({ scheme: 'file', directory: dir, prefix: '' }, storeOptions()));
});
