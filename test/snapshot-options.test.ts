import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { snapshotStep } from '../src/plan/steps/snapshot.js';
import { snapshotOptionsSchema } from '../src/snapshot/options.js';
import { TransferProgress } from '../src/snapshot/progress.js';
import { FileReader } from '../src/snapshot/read.js';
import { deadlineGate } from '../src/snapshot/upload.js';
import { walkPaths, type FoundFile } from '../src/snapshot/walk.js';
import { parseLocation } from '../src/stores/location.js';

const messages = (raw: unknown): string[] => {
  const result = snapshotOptionsSchema.safeParse(raw);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
};

describe('snapshot options', () => {
  test('fill defaults: files mode, newest first, 8MiB parts, 4 parts and 4 files in flight', () => {
    expect(snapshotOptionsSchema.parse({ paths: ['/data/ckpt'], to: 's3://ckpt-bucket/p/' })).toMatchObject({
      mode: 'files',
      compression: 'none',
      priority: 'newest',
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
      concurrency: 4,
      reserve: 2000,
      exclude: [],
    });
  });

  test.each([
    [{ paths: ['data/ckpt'], to: 's3://ckpt-bucket/' }, 'paths.0: got "data/ckpt": a snapshot path must be an absolute path'],
    [{ paths: [], to: 's3://ckpt-bucket/' }, 'paths: list at least one file, directory or glob'],
    [{ paths: ['/d'], to: 's3://ckpt-bucket/{instance}/' }, 'to: unknown placeholder {instance}: expected one of {instanceId} {noticeId} {hostname} {timestamp} {kind}'],
    [{ paths: ['/d'], to: 's3://b/' }, 'to: got "s3://b/": bucket name "b" is not valid: expected s3://bucket/prefix/, gs://bucket/prefix/, az://account/container/prefix/ or file:///directory/'],
    [{ paths: ['/d'], to: 'ftp://b/' }, 'to: got "ftp://b/": scheme "ftp://" is not supported: expected s3://bucket/prefix/, gs://bucket/prefix/, az://account/container/prefix/ or file:///directory/'],
    [{ paths: ['/d'], to: 'file://relative/dir' }, 'to: got "file://relative/dir": a file:// location needs an absolute path, as in file:///mnt/nfs/snapshots/'],
    [{ paths: ['/d'], to: 's3://ckpt-bucket/', compression: 'zstd' }, 'compression: compression applies to mode: archive only'],
    [{ paths: ['/d'], to: 's3://ckpt-bucket/', partSize: '1MiB' }, 'partSize: expected at least 5MiB (the S3 minimum part size)'],
    [{ paths: ['/d'], to: 's3://ckpt-bucket/', partSize: 'big' }, 'partSize: got "big": expected a size such as 16MiB, 8MB or a number of bytes'],
    [{ paths: ['/d'], to: 's3://ckpt-bucket/', priority: 'random' }, 'priority: expected one of newest, oldest, smallest, largest, path'],
    [{ paths: ['/d'], to: 's3://ckpt-bucket/', bucket: 'x' }, expect.stringContaining('bucket')],
  ])('reject %j with a message naming the field', (raw, message) => {
    expect(messages(raw)).toContainEqual(message);
  });

  test('describe a snapshot step in one line for --dry-run', () => {
    const options = snapshotOptionsSchema.parse({ paths: ['/data/ckpt'], to: 's3://ckpt-bucket/{noticeId}/', mode: 'archive', compression: 'zstd' });
    expect(snapshotStep.describe(options)).toBe('upload /data/ckpt to s3://ckpt-bucket/{noticeId}/ (archive, zstd, newest first)');
  });

  test('parse each kind of location into bucket, account, container and prefix', () => {
    expect(parseLocation('s3://bucket/a/b')).toEqual({ scheme: 's3', bucket: 'bucket', prefix: 'a/b/' });
    expect(parseLocation('gs://bucket')).toEqual({ scheme: 'gs', bucket: 'bucket', prefix: '' });
    expect(parseLocation('az://acct/cont/x/')).toEqual({ scheme: 'az', account: 'acct', container: 'cont', prefix: 'x/' });
    expect(parseLocation('file:///mnt/nfs/')).toEqual({ scheme: 'file', directory: '/mnt/nfs', prefix: '' });
  });
});

describe('finding files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'walk-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('follow a listed path that is a link, naming files after the link', async () => {
    await mkdir(join(dir, 'step-900'));
    await writeFile(join(dir, 'step-900/model.pt'), 'w');
    await symlink(join(dir, 'step-900'), join(dir, 'latest'));

    const found = await walkPaths([join(dir, 'latest')], []);

    expect(found.entries).toEqual([expect.objectContaining({ type: 'file', name: 'latest/model.pt', source: join(dir, 'latest/model.pt') })]);
  });

  test('store a file once when two paths name it, and skip a second file with the same snapshot name', async () => {
    await mkdir(join(dir, 'a/ckpt'), { recursive: true });
    await mkdir(join(dir, 'b/ckpt'), { recursive: true });
    await writeFile(join(dir, 'a/ckpt/x'), '1');
    await writeFile(join(dir, 'b/ckpt/x'), '2');

    const found = await walkPaths([join(dir, 'a/ckpt'), join(dir, 'a/ckpt/*'), join(dir, 'b/ckpt')], []);

    expect(found.entries.map((entry) => entry.source)).toEqual([join(dir, 'a/ckpt/x')]);
    expect(found.skipped).toEqual([{ path: join(dir, 'b/ckpt/x'), reason: `same snapshot name ckpt/x as ${join(dir, 'a/ckpt/x')}` }]);
  });

  test('read a file that shrinks while being read once, say so, and give the hash and part CRC32 of what was read', async () => {
    await writeFile(join(dir, 'log'), 'x'.repeat(4 << 20));
    const [file] = (await walkPaths([join(dir, 'log')], [])).entries as FoundFile[];
    const reader = FileReader.start();
    try {
      const read = await reader.open(file!, { exactSize: false, partSize: 5 * 1024 * 1024 });
      await truncate(join(dir, 'log'), 1000);

      const chunks: Buffer[] = [];
      for await (const chunk of read.body) chunks.push(chunk as Buffer);
      const result = await read.result();

      expect(result.size).toBe(Buffer.concat(chunks).length);
      expect(result.sha256).toBe(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
      expect(result.changed).toMatch(/written to while being read/);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(Buffer.concat(chunks)));
      expect(await read.partCrc32(1)).toBe(crc.toString('base64'));
    } finally {
      await reader.close();
    }
  });
});

describe('deadline gate', () => {
  afterEach(() => jest.useRealTimers());

  test('start files while the rate is unknown, then refuse one that cannot finish before the cut-off and accept a smaller one', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const stop = new AbortController();
    const progress = new TransferProgress(300e6);
    const gate = deadlineGate(stop.signal, Date.now() + 12_000, progress);

    expect(gate(100e6)).toBeUndefined();
    jest.advanceTimersByTime(2000);
    progress.add(20e6); // 10 MB/s, 80 MB of the first file to go (8 s), 10 s left
    expect(gate(50e6)).toMatch(/^not started: needs about 13s at 10\.0 MB\/s, 10s left before the deadline$/);
    expect(gate(1e6)).toBeUndefined();
    stop.abort();
    expect(gate(1)).toBe('not started: the deadline was reached');
  });
});
