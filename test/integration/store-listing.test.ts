import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { openFileStore } from '../../src/stores/file.js';
import { onePart } from '../../src/stores/parts.js';
import { openS3Store } from '../../src/stores/s3.js';
import { STORE_PAGE_SIZE, type ObjectStore, type StoreOptions } from '../../src/stores/types.js';
import { S3_CREDENTIALS, startS3Server, type S3TestServer } from '../helpers/s3-server.js';

/** list, stat and delete on the stores that run here for real: S3 (s3rver) and file://. */

let dir: string;
const savedEnv = { ...process.env };

const storeOptions = (): StoreOptions => ({ partSize: 5 * 1024 * 1024, queueSize: 2, concurrency: 4, signal: new AbortController().signal, log: silentLogger() });

async function listed(store: ObjectStore, prefix: string): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for await (const object of store.list(prefix)) found.set(object.key, object.size);
  return found;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'store-listing-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  process.env = { ...savedEnv };
});

describe('S3 store against s3rver', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => server.close());

  const openStore = () => {
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    return openS3Store({ scheme: 's3', bucket: server.bucket, prefix: '' }, { ...storeOptions(), endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' });
  };

  test('lists every key under a prefix over more than one page, with sizes and times, then deletes them in batches', async () => {
    const store = openStore();
    try {
      const keys = Array.from({ length: STORE_PAGE_SIZE + 5 }, (_, index) => `many/k${String(index).padStart(5, '0')}`);
      for (let start = 0; start < keys.length; start += 50) {
        await Promise.all(keys.slice(start, start + 50).map((key, index) => store.put(key, onePart(Buffer.alloc(index % 3)))));
      }
      await store.put('other/x', onePart(Buffer.from('not listed')));
      const before = Date.now();

      const found = await listed(store, 'many/');
      expect(found.size).toBe(keys.length);
      expect(found.get('many/k00004')).toBe(1);
      const info = await store.stat('many/k00002');
      expect(info).toMatchObject({ key: 'many/k00002', size: 2 });
      expect(info!.modified).toBeLessThanOrEqual(before + 1000);
      expect(info!.modified).toBeGreaterThan(before - 10 * 60_000);

      // A stopped delete (a prune cut by a notice) sends no batch.
      await expect(store.delete(keys, AbortSignal.abort(new Error('a notice')))).rejects.toThrow('a notice');
      expect((await listed(store, 'many/')).size).toBe(keys.length);
      await store.delete([...keys, 'many/never-was']);
      expect((await listed(store, 'many/')).size).toBe(0);
      expect(await store.stat('many/k00000')).toBeUndefined();
      expect(await store.has('other/x')).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('file store', () => {
  const open = () => openFileStore({ scheme: 'file', directory: join(dir, 'root'), prefix: '' }, storeOptions());

  test('lists files under a prefix (not partial puts, not links), stats and deletes them', async () => {
    const store = open();
    await store.put('repo/chunks/ab/one', onePart(Buffer.from('12345')));
    await store.put('repo/chunks/cd/two', onePart(Buffer.from('1')));
    await store.put('repo/snapshots/s.json', onePart(Buffer.from('{}')));
    await store.put('repository-other/x', onePart(Buffer.from('x')));
    await writeFile(join(dir, 'root/repo/chunks/ab/.0123abcd.partial'), 'half');

    expect(await listed(store, 'repo/chunks/')).toEqual(new Map([['repo/chunks/ab/one', 5], ['repo/chunks/cd/two', 1]]));
    expect([...(await listed(store, 'repo')).keys()].sort()).toEqual(['repo/chunks/ab/one', 'repo/chunks/cd/two', 'repo/snapshots/s.json', 'repository-other/x']);
    expect([...(await listed(store, '')).keys()]).toHaveLength(4);
    expect(await listed(store, 'nothing/here/')).toEqual(new Map());
    expect(await store.stat('repo/chunks/ab/one')).toMatchObject({ size: 5 });

    await expect(store.delete(['repo/chunks/ab/one'], AbortSignal.abort(new Error('a notice')))).rejects.toThrow('a notice');
    expect(await store.has('repo/chunks/ab/one')).toBe(true);
    await store.delete(['repo/chunks/ab/one', 'repo/chunks/ab/gone']);
    expect([...(await listed(store, 'repo/chunks/')).keys()]).toEqual(['repo/chunks/cd/two']);
  });

  test('never follows a link: a linked folder or file is not listed, not statted, and nothing is deleted through it', async () => {
    const outside = join(dir, 'outside');
    await mkdir(join(outside, 'ab'), { recursive: true });
    await writeFile(join(outside, 'ab/victim'), 'keep me');
    await writeFile(join(outside, 'file'), 'keep me too');
    const store = open();
    await store.put('repo/chunks/cd/real', onePart(Buffer.from('r')));
    await symlink(join(outside, 'ab'), join(dir, 'root/repo/chunks/ab'));
    await symlink(join(outside, 'file'), join(dir, 'root/repo/chunks/cd/linked'));
    await symlink(outside, join(dir, 'root/linked-root'));

    expect([...(await listed(store, 'repo/chunks/')).keys()]).toEqual(['repo/chunks/cd/real']);
    expect(await listed(store, 'linked-root/')).toEqual(new Map());
    expect(await store.stat('repo/chunks/ab/victim')).toBeUndefined();
    expect(await store.has('repo/chunks/cd/linked')).toBe(false);

    await store.delete(['repo/chunks/ab/victim', 'repo/chunks/cd/linked', 'linked-root/file']);
    await expect(import('node:fs/promises').then((fs) => fs.readFile(join(outside, 'ab/victim'), 'utf8'))).resolves.toBe('keep me');
    await expect(import('node:fs/promises').then((fs) => fs.readFile(join(outside, 'file'), 'utf8'))).resolves.toBe('keep me too');
  });

  test('a key that leaves the directory is refused', async () => {
    const store = open();
    await expect(store.delete(['../outside'])).rejects.toThrow(/leaves the directory/);
    await expect(store.stat('a/../../x')).rejects.toThrow(/leaves the directory/);
  });
});
