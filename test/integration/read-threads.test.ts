import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Worker } from 'node:worker_threads';
import { silentLogger } from '../../src/lib/log.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { ContentChunker, SNAPSHOT_CHUNK_SIZES } from '../../src/snapshots/chunker.js';
import { manifestSchema, type ManifestFile } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { FileReader, type CutRef, type FileRead } from '../../src/snapshots/read.js';
import { restore } from '../../src/snapshots/restore.js';
import { walkPaths, type FoundFile } from '../../src/snapshots/walk.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { testBytes } from '../helpers/seed.js';

/**
 * Dedup mode cuts and hashes chunks on the reading threads (read-worker.ts), several at once.
 * The chunks must be exactly those of the chunker run over each whole file on one thread, and a
 * thread that dies or a file swapped while read must end that file clearly, never hang.
 */

const MIB = 1024 * 1024;
const PART = 5 * MIB;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

let dir: string;
let step: TestStepContext | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(scratch, 'read-threads-'));
  await mkdir(join(dir, 'ckpt'));
});

afterEach(async () => {
  step?.dispose();
  step = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Sizes around the part size, the chunk sizes and nothing; zeros have no content boundaries (cut at maxSize). */
async function writeTree(): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>([
    ['empty.bin', Buffer.alloc(0)],
    ['config.json', Buffer.from('{"lr": 0.1}')],
    ['small.bin', testBytes(70_000)],
    ['one-part.bin', testBytes(PART)],
    ['model.pt', testBytes(13 * MIB + 12_345)],
    ['zeros.bin', Buffer.alloc(9 * MIB)],
  ]);
  for (const [name, bytes] of files) await writeFile(join(dir, 'ckpt', name), bytes);
  return files;
}

/** The single-thread reference: the chunker over the whole file at once, each chunk hashed (SHA-256, and CRC32 by node:zlib). */
function referenceChunks(bytes: Buffer): CutRef[] {
  const chunker = new ContentChunker(SNAPSHOT_CHUNK_SIZES);
  const refs: CutRef[] = [];
  const ref = (chunk: Uint8Array) => refs.push([sha256(chunk), chunk.length, crc32(chunk)]);
  chunker.push(bytes, ref);
  chunker.end(ref);
  return refs;
}

async function walked(): Promise<FoundFile[]> {
  return (await walkPaths([join(dir, 'ckpt')], [], new AbortController().signal)).entries as FoundFile[];
}

/** The chunks of every part; each part's CRC32 (joined from its pieces when cut) checked against its bytes. */
async function readChunks(read: FileRead): Promise<CutRef[]> {
  const chunks: CutRef[] = [];
  for await (const part of read.parts) {
    expect(part.crc32).toBe(crc32(part.bytes));
    chunks.push(...(part.chunks ?? []));
    part.release?.();
  }
  return chunks;
}

test('chunks cut on two reading threads at once are those of one thread over each whole file', async () => {
  const files = await writeTree();
  const reader = FileReader.start({ threads: 2 });
  try {
    const cut = await Promise.all(
      (await walked()).map(async (file) => {
        const read = await reader.open(file, { exactSize: false, partSize: PART, checksum: 'crc32', chunks: true });
        return [file.name, await readChunks(read), await read.result()] as const;
      }),
    );
    expect(cut).toHaveLength(files.size);
    for (const [name, chunks, result] of cut) {
      const bytes = files.get(name.replace(/^ckpt\//, ''))!;
      expect({ name, chunks }).toEqual({ name, chunks: referenceChunks(bytes) });
      expect(result).toMatchObject({ size: bytes.length, checksum: crc32(bytes).toString(16).padStart(8, '0') });
    }
  } finally {
    await reader.close();
  }
});

test('a dedup snapshot stores the same chunks and manifest as one thread would, and restores every byte', async () => {
  const files = await writeTree();
  step = testStepContext({ timeoutMs: 30_000 });
  const options = snapshotOptionsSchema.parse({ paths: [join(dir, 'ckpt')], to: `file://${dir}/repo/`, mode: 'dedup', partSize: '5MiB', concurrency: 4 });
  expect(await snapshotStep.run(options, step.context)).toMatchObject({ complete: true });

  const latest = JSON.parse(await readFile(join(dir, 'repo/latest.json'), 'utf8')) as { manifest: string };
  const manifest = manifestSchema.parse(JSON.parse(await readFile(join(dir, 'repo', latest.manifest), 'utf8')));
  const listed = new Map(manifest.files.map((entry) => [entry.path, (entry as ManifestFile).chunks]));
  for (const [name, bytes] of files) {
    const stored = listed.get(`ckpt/${name}`) as [string, number, string, number][];
    expect({ name, chunks: stored.map(([hash, size]) => [hash, size]) }).toEqual({ name, chunks: referenceChunks(bytes).map(([hash, size]) => [hash, size]) });
    // Each chunk's range of its pack holds exactly the bytes its name says: the main thread took the right ones.
    for (const [hash, size, pack, offset] of stored) expect(sha256((await readFile(join(dir, 'repo/packs', pack))).subarray(offset, offset + size))).toBe(hash);
  }
  await restore({ from: `file://${dir}/repo/`, latest: true, to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal });
  for (const [name, bytes] of files) expect(sha256(await readFile(join(dir, 'out/ckpt', name)))).toBe(sha256(bytes));
});

test('a reading thread that dies fails the file it was reading, clearly; the other thread reads on', async () => {
  await writeFile(join(dir, 'ckpt/a.bin'), testBytes(4 * PART));
  await writeFile(join(dir, 'ckpt/b.bin'), testBytes(2 * PART));
  const [a, b] = (await walked()).sort((x, y) => x.name.localeCompare(y.name));
  const reader = FileReader.start({ threads: 2 });
  try {
    const options = { exactSize: false, partSize: PART, checksum: 'crc32', chunks: true } as const;
    const first = await reader.open(a!, options);
    const second = await reader.open(b!, options);
    const parts = first.parts[Symbol.asyncIterator]();
    (await parts.next()).value.release();
    // Files go to the thread with the fewest open: `first` is on the first thread.
    await (reader as unknown as { threads: { worker: Worker }[] }).threads[0]!.worker.terminate();

    await expect(readChunks({ ...first, parts: { [Symbol.asyncIterator]: () => parts } })).rejects.toThrow('the file reading thread stopped');
    expect(await readChunks(second)).toEqual(referenceChunks(await readFile(b!.source)));
    const third = await reader.open(a!, options);
    expect(await readChunks(third)).toEqual(referenceChunks(await readFile(a!.source)));
  } finally {
    await reader.close();
  }
});

/** Another file with the size and mtime of `path` (other bytes), outside the tree: what a swap puts in its place. */
async function twinOf(path: string): Promise<string> {
  const info = await stat(path);
  const twin = join(dir, 'twin.pt');
  await writeFile(twin, testBytes(info.size));
  await utimes(twin, info.atime, info.mtime);
  return twin;
}

describe('a file swapped while its chunks are read', () => {
  /** Opens model.pt, reads one part, lets `swap` replace the path, then reads the rest. */
  async function readAcrossSwap(swap: (path: string) => Promise<void>) {
    const original = testBytes(3 * PART);
    await writeFile(join(dir, 'ckpt/model.pt'), original);
    const [file] = await walked();
    const reader = FileReader.start({ threads: 2 });
    try {
      const read = await reader.open(file!, { exactSize: false, partSize: PART, checksum: 'crc32', chunks: true });
      const parts = read.parts[Symbol.asyncIterator]();
      const head = (await parts.next()).value;
      await swap(file!.source);
      const chunks = [...(head.chunks ?? []), ...(await readChunks({ ...read, parts: { [Symbol.asyncIterator]: () => parts } }))];
      return { original, chunks, result: await read.result() };
    } finally {
      await reader.close();
    }
  }

  test('for a FIFO: the file is read to its end as opened, and the result says it changed', async () => {
    const { original, chunks, result } = await readAcrossSwap(async (path) => {
      await rename(path, join(dir, 'moved.pt'));
      execFileSync('mkfifo', [path]);
    });

    expect(chunks).toEqual(referenceChunks(original));
    expect(result.changed).toBe('replaced while being read (its path now names a link or another file); stored as of opening');
  });

  test('for a symlink: the bytes are the file as opened, never the link target, and the result says it changed', async () => {
    await writeFile(join(dir, 'other.pt'), 'not the checkpoint');
    const { original, chunks, result } = await readAcrossSwap(async (path) => {
      await rm(path);
      await symlink(join(dir, 'other.pt'), path);
    });

    expect(chunks).toEqual(referenceChunks(original));
    expect(result.changed).toBe('replaced while being read (its path now names a link or another file); stored as of opening');
  });

  test('for a symlink to a file of the same size and mtime: the path is looked at, not followed, so the result still says it changed', async () => {
    const { original, chunks, result } = await readAcrossSwap(async (path) => {
      const twin = await twinOf(path);
      await rm(path);
      await symlink(twin, path);
    });

    expect(chunks).toEqual(referenceChunks(original));
    expect(result.changed).toBe('replaced while being read (its path now names a link or another file); stored as of opening');
  });
});

test('a range read (a chunk a sync owes) gives the bytes, SHA-256 and CRC32 of the file as scanned, in memory of its own, and is refused once the path is a link, another file, or the size or mtime moved', async () => {
  const original = testBytes(3 * MIB);
  const path = join(dir, 'ckpt/model.pt');
  await writeFile(path, original);
  const [file] = await walked();
  const reader = FileReader.start({ threads: 2 });
  try {
    const range = await reader.readRange(file!, MIB + 7, 300_000);
    expect(range.bytes.equals(original.subarray(MIB + 7, MIB + 7 + 300_000))).toBe(true);
    expect(range.sha256).toBe(sha256(range.bytes));
    expect(range.crc32).toBe(crc32(range.bytes));
    // Moved, not shared: copies out of it into a pack are plain memory copies.
    expect(range.bytes.buffer).toBeInstanceOf(ArrayBuffer);
    expect(reader.bytesRead).toBe(300_000);

    await expect(reader.readRange({ ...file!, size: file!.size + 1 }, 0, 10)).rejects.toMatchObject({ code: 'EREPLACED', message: 'changed since it was scanned: not read' });
    await expect(reader.readRange({ ...file!, mtimeMs: file!.mtimeMs - 1000 }, 0, 10)).rejects.toMatchObject({ code: 'EREPLACED' });
    await rename(path, join(dir, 'moved.pt'));
    await writeFile(path, original);
    await expect(reader.readRange(file!, 0, 10)).rejects.toMatchObject({ code: 'EREPLACED', message: 'replaced by another file after it was found: not read' });
    await rm(path);
    await symlink(join(dir, 'moved.pt'), path);
    await expect(reader.readRange(file!, 0, 10)).rejects.toMatchObject({ code: 'ELOOP' });
    expect(reader.bytesRead).toBe(300_000);
  } finally {
    await reader.close();
  }
});

describe('a large file cut on every thread at once, in segments (segmented-read.ts)', () => {
  const SEGMENT = 2 * MIB;
  const options = { exactSize: false, partSize: PART, checksum: 'crc32', chunks: true } as const;

  /**
   * Random bytes meet the next segment's chunks within its overlap; zeros after a boundary off
   * the 1 MiB grid never do (cut every maxSize from different starts), so the next segment is
   * read again on one thread; zeros from the file's start cut on the grid, where the segments
   * start, so they meet at a segment's first byte.
   */
  const cases: [string, () => Buffer][] = [
    ['random bytes', () => testBytes(21 * MIB + 12_345)],
    ['random bytes, then zeros, then random bytes', () => Buffer.concat([testBytes(3 * MIB + 123), Buffer.alloc(12 * MIB), testBytes(5 * MIB + 7)])],
    ['zeros', () => Buffer.alloc(9 * MIB)],
    ['three segments and a byte', () => testBytes(3 * SEGMENT + 1)],
    ['a last segment shorter than the overlap', () => testBytes(4 * SEGMENT + 1000)],
  ];

  test.each(cases)('%s: the chunks and checksum of one thread over the whole file, in parts ending on chunk ends', async (_name, make) => {
    const bytes = make();
    await writeFile(join(dir, 'ckpt/model.pt'), bytes);
    const [file] = await walked();
    const reader = FileReader.start({ threads: 2, segmentBytes: SEGMENT });
    try {
      const read = await reader.open(file!, options);
      const chunks: CutRef[] = [];
      let at = 0;
      for await (const part of read.parts) {
        expect(part.crc32).toBe(crc32(part.bytes));
        expect(part.bytes.equals(bytes.subarray(at, at + part.bytes.length))).toBe(true);
        expect(part.chunks!.reduce((sum, [, size]) => sum + size, 0)).toBe(part.bytes.length);
        at += part.bytes.length;
        chunks.push(...part.chunks!);
        part.release?.();
      }
      expect(chunks).toEqual(referenceChunks(bytes));
      expect(await read.result()).toEqual({ size: bytes.length, mtimeMs: file!.mtimeMs, checksum: crc32(bytes).toString(16).padStart(8, '0') });
      // Each segment was read with its overlap: more than the file, so the file went in segments.
      expect(reader.bytesRead).toBeGreaterThan(bytes.length);
    } finally {
      await reader.close();
    }
  });

  test('a file under two segments, a single thread or a SHA-256 checksum is read whole on one thread', async () => {
    await writeFile(join(dir, 'ckpt/model.pt'), testBytes(2 * SEGMENT - 1));
    await writeFile(join(dir, 'ckpt/other.pt'), testBytes(3 * SEGMENT));
    const [model, other] = (await walked()).sort((x, y) => x.name.localeCompare(y.name));
    for (const [threads, file, checksum] of [[2, model!, 'crc32'], [1, other!, 'crc32'], [2, other!, 'sha256']] as const) {
      const reader = FileReader.start({ threads, segmentBytes: SEGMENT });
      try {
        const read = await reader.open(file, { ...options, checksum });
        expect(await readChunks(read)).toEqual(referenceChunks(await readFile(file.source)));
        expect(reader.bytesRead).toBe(file.size);
      } finally {
        await reader.close();
      }
    }
  });

  test('a file opened while every thread has a file open is read whole; once those are read, large files go in segments again', async () => {
    for (const name of ['a.pt', 'b.pt', 'c.pt']) await writeFile(join(dir, 'ckpt', name), testBytes(3 * SEGMENT));
    const [a, b, c] = (await walked()).sort((x, y) => x.name.localeCompare(y.name));
    const reader = FileReader.start({ threads: 2, segmentBytes: SEGMENT });
    try {
      const first = await reader.open(a!, options);
      const second = await reader.open(b!, options);
      const third = await reader.open(c!, options);
      // Nothing is read before its parts are iterated.
      expect(reader.bytesRead).toBe(0);
      expect(await readChunks(third)).toEqual(referenceChunks(await readFile(c!.source)));
      expect(reader.bytesRead).toBe(c!.size);
      expect(await readChunks(first)).toEqual(referenceChunks(await readFile(a!.source)));
      expect(await readChunks(second)).toEqual(referenceChunks(await readFile(b!.source)));
      expect(reader.bytesRead).toBeGreaterThan(a!.size + b!.size + c!.size);
      const before = reader.bytesRead;
      expect(await readChunks(await reader.open(c!, options))).toEqual(referenceChunks(await readFile(c!.source)));
      expect(reader.bytesRead - before).toBeGreaterThan(c!.size);
    } finally {
      await reader.close();
    }
  });

  test('a file that shrinks while its segments are read fails, saying so', async () => {
    const path = join(dir, 'ckpt/model.pt');
    await writeFile(path, testBytes(8 * SEGMENT));
    const [file] = await walked();
    const reader = FileReader.start({ threads: 2, segmentBytes: SEGMENT });
    try {
      const read = await reader.open(file!, options);
      await truncate(path, 3 * SEGMENT);
      await expect(readChunks(read)).rejects.toMatchObject({ code: 'EREPLACED', message: 'shrank while being read: not read' });
    } finally {
      await reader.close();
    }
  });

  test('a path swapped for a link or another file after opening fails the file: no segment reads what took its place', async () => {
    const path = join(dir, 'ckpt/model.pt');
    await writeFile(path, testBytes(4 * SEGMENT));
    await writeFile(join(dir, 'other.pt'), testBytes(4 * SEGMENT));
    const [file] = await walked();
    const reader = FileReader.start({ threads: 2, segmentBytes: SEGMENT });
    try {
      const linked = await reader.open(file!, options);
      await rename(path, join(dir, 'moved.pt'));
      await symlink(join(dir, 'other.pt'), path);
      await expect(readChunks(linked)).rejects.toMatchObject({ code: 'ELOOP' });
      await rm(path);
      await rename(join(dir, 'moved.pt'), path);
      const replaced = await reader.open(file!, options);
      await rm(path);
      await rename(join(dir, 'other.pt'), path);
      await expect(readChunks(replaced)).rejects.toMatchObject({ code: 'EREPLACED', message: 'replaced by another file after it was found: not read' });
    } finally {
      await reader.close();
    }
  });

  test('a file whose path names another file of the same size and mtime once its segments are read is stored as read, and the result says it was replaced', async () => {
    const path = join(dir, 'ckpt/model.pt');
    const bytes = testBytes(4 * SEGMENT);
    await writeFile(path, bytes);
    const [file] = await walked();
    const reader = FileReader.start({ threads: 2, segmentBytes: SEGMENT });
    try {
      const read = await reader.open(file!, options);
      expect(await readChunks(read)).toEqual(referenceChunks(bytes));
      await rename(await twinOf(path), path);
      expect((await read.result()).changed).toBe('replaced while being read (its path now names a link or another file); stored as of opening');
    } finally {
      await reader.close();
    }
  });

  test('a dedup snapshot of a file past two default segments stores the chunks one thread would, and restores every byte', async () => {
    const bytes = Buffer.concat([testBytes(40 * MIB + 5), Buffer.alloc(3 * MIB), testBytes(30 * MIB)]);
    await writeFile(join(dir, 'ckpt/model.pt'), bytes);
    step = testStepContext({ timeoutMs: 60_000 });
    const snapshotOptions = snapshotOptionsSchema.parse({ paths: [join(dir, 'ckpt')], to: `file://${dir}/repo/`, mode: 'dedup', concurrency: 2 });
    expect(await snapshotStep.run(snapshotOptions, step.context)).toMatchObject({ complete: true });

    const latest = JSON.parse(await readFile(join(dir, 'repo/latest.json'), 'utf8')) as { manifest: string };
    const manifest = manifestSchema.parse(JSON.parse(await readFile(join(dir, 'repo', latest.manifest), 'utf8')));
    const stored = (manifest.files[0] as ManifestFile).chunks as [string, number, string, number][];
    expect(stored.map(([hash, size]) => [hash, size])).toEqual(referenceChunks(bytes).map(([hash, size]) => [hash, size]));
    await restore({ from: `file://${dir}/repo/`, latest: true, to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal });
    expect(sha256(await readFile(join(dir, 'out/ckpt/model.pt')))).toBe(sha256(bytes));
  });
});
