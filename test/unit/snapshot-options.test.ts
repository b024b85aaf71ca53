import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { jest } from '@jest/globals';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { TransferProgress } from '../../src/snapshots/progress.js';
import { FileReader } from '../../src/snapshots/read.js';
import { deadlineGate } from '../../src/snapshots/upload.js';
import { walkPaths, type FoundFile } from '../../src/snapshots/walk.js';
import { parseLocation } from '../../src/stores/location.js';
import { cutIntoParts, type Part } from '../../src/stores/parts.js';
import { testBytes } from '../helpers/seed.js';

const messages = (raw: unknown): string[] => {
  const result = snapshotOptionsSchema.safeParse(raw);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-files-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('snapshot options', () => {
  test('fill defaults: files mode, newest first, CRC32 checksums, 8MiB parts, 4 parts and 4 files in flight', () => {
    expect(snapshotOptionsSchema.parse({ paths: ['/data/ckpt'], to: 's3://ckpt-bucket/p/' })).toMatchObject({
      mode: 'files',
      compression: 'none',
      priority: 'newest',
      checksum: 'crc32',
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
    [{ paths: ['/d'], to: 's3://ckpt-bucket/', checksum: 'md5' }, 'checksum: expected one of crc32, sha256'],
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
  test('follow a listed path that is a link, naming files after the link', async () => {
    await mkdir(join(dir, 'step-900'));
    await writeFile(join(dir, 'step-900/model.pt'), 'w');
    await symlink(join(dir, 'step-900'), join(dir, 'latest'));

    const found = await walkPaths([join(dir, 'latest')], [], new AbortController().signal);

    expect(found.entries).toEqual([expect.objectContaining({ type: 'file', name: 'latest/model.pt', source: join(dir, 'latest/model.pt') })]);
  });

  test('store a file once when two paths name it, and skip a second file with the same snapshot name', async () => {
    await mkdir(join(dir, 'a/ckpt'), { recursive: true });
    await mkdir(join(dir, 'b/ckpt'), { recursive: true });
    await writeFile(join(dir, 'a/ckpt/x'), '1');
    await writeFile(join(dir, 'b/ckpt/x'), '2');

    const found = await walkPaths([join(dir, 'a/ckpt'), join(dir, 'a/ckpt/*'), join(dir, 'b/ckpt')], [], new AbortController().signal);

    expect(found.entries.map((entry) => entry.source)).toEqual([join(dir, 'a/ckpt/x')]);
    expect(found.skipped).toEqual([{ path: join(dir, 'b/ckpt/x'), reason: `same snapshot name ckpt/x as ${join(dir, 'a/ckpt/x')}` }]);
  });

  test('read a file that shrinks while being read once, say so, and give the hash and part CRC32 of what was read', async () => {
    await writeFile(join(dir, 'log'), 'x'.repeat(4 << 20));
    const [file] = (await walkPaths([join(dir, 'log')], [], new AbortController().signal)).entries as FoundFile[];
    const reader = FileReader.start();
    try {
      const read = await reader.open(file!, { exactSize: false, partSize: 5 * 1024 * 1024, checksum: 'sha256' });
      await truncate(join(dir, 'log'), 1000);

      const parts: Part[] = [];
      for await (const part of read.parts) parts.push(part);
      const result = await read.result();

      expect(parts).toHaveLength(1);
      expect(result.size).toBe(parts[0]!.bytes.length);
      expect(result.checksum).toBe(createHash('sha256').update(parts[0]!.bytes).digest('hex'));
      expect(result.changed).toMatch(/written to while being read/);
      expect(parts[0]!.crc32).toBe(crc32(parts[0]!.bytes));
    } finally {
      await reader.close();
    }
  });
});

describe('parts', () => {
  const MIB = 1024 * 1024;

  test('a file is read in parts of partSize, each with the CRC32 of its bytes, and the memory of a released part is read into again', async () => {
    const bytes = testBytes(12 * MIB + 5);
    await writeFile(join(dir, 'model.pt'), bytes);
    const [file] = (await walkPaths([join(dir, 'model.pt')], [], new AbortController().signal)).entries as FoundFile[];
    const reader = FileReader.start();
    try {
      const read = await reader.open(file!, { exactSize: false, partSize: 5 * MIB, checksum: 'crc32' });
      const seen: { length: number; crc32: number; copy: Buffer; view: Buffer }[] = [];
      for await (const part of read.parts) {
        seen.push({ length: part.bytes.length, crc32: part.crc32, copy: Buffer.from(part.bytes), view: part.bytes });
        part.release?.();
      }
      const result = await read.result();

      // Part 2 was read ahead while part 1 was in use; part 3 went into part 1's memory.
      expect(seen[0]!.view.subarray(0, seen[2]!.length).equals(seen[2]!.copy)).toBe(true);

      expect(seen.map((part) => part.length)).toEqual([5 * MIB, 5 * MIB, 2 * MIB + 5]);
      expect(seen.map((part) => part.crc32)).toEqual([0, 5, 10].map((at) => crc32(bytes.subarray(at * MIB, (at + 5) * MIB))));
      expect(Buffer.concat(seen.map((part) => part.copy)).equals(bytes)).toBe(true);
      expect(result).toEqual({ size: bytes.length, mtimeMs: file!.mtimeMs, checksum: crc32(bytes).toString(16).padStart(8, '0') });
    } finally {
      await reader.close();
    }
  });

  test('leaving a file part-way closes it, and the reader goes on with the next file', async () => {
    await writeFile(join(dir, 'a'), testBytes(11 * MIB));
    await writeFile(join(dir, 'b'), 'second');
    const [a, b] = (await walkPaths([join(dir, 'a'), join(dir, 'b')], [], new AbortController().signal)).entries as FoundFile[];
    const reader = FileReader.start();
    try {
      const first = await reader.open(a!, { exactSize: false, partSize: 5 * MIB, checksum: 'crc32' });
      for await (const part of first.parts) {
        expect(part.bytes.length).toBe(5 * MIB);
        break;
      }
      const second = await reader.open(b!, { exactSize: false, partSize: 5 * MIB, checksum: 'crc32' });
      const parts: Part[] = [];
      for await (const part of second.parts) parts.push(part);
      expect(parts.map((part) => part.bytes.toString())).toEqual(['second']);
    } finally {
      await reader.close();
    }
  });

  test('a stream is cut into parts of partSize with their CRC32s; an empty one gives no part', async () => {
    const bytes = testBytes(2 * MIB + 100);
    const chunks = [bytes.subarray(0, 700_000), bytes.subarray(700_000, 1_500_000), bytes.subarray(1_500_000)];
    const parts: Part[] = [];
    for await (const part of cutIntoParts(Readable.from(chunks), MIB)) parts.push(part);

    expect(parts.map((part) => part.bytes.length)).toEqual([MIB, MIB, 100]);
    expect(Buffer.concat(parts.map((part) => part.bytes)).equals(bytes)).toBe(true);
    expect(parts.map((part) => part.crc32)).toEqual(parts.map((part) => crc32(part.bytes)));
    const none: Part[] = [];
    for await (const part of cutIntoParts(Readable.from([]), MIB)) none.push(part);
    expect(none).toEqual([]);
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

  test('a pause with nothing in flight does not count as slowness: the rate is that of the time bytes moved', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const progress = new TransferProgress(100e6);
    const gate = deadlineGate(new AbortController().signal, Date.now() + 60_000, progress);

    expect(gate(11)).toBeUndefined();
    jest.advanceTimersByTime(5);
    progress.add(11);
    // A large file read and hashed whose chunks are all stored: nothing to send for 2 s.
    jest.advanceTimersByTime(2000);
    expect(gate(10e6)).toBeUndefined();
    jest.advanceTimersByTime(1000);
    progress.add(10e6); // 10 MB in 1 s of transfer
    expect(progress.rate()! / 1e6).toBeCloseTo(10, 0);
    expect(gate(50e6)).toBeUndefined();
  });
});
