import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { CHUNKER_VERSION } from '../../src/snapshots/chunker.js';
import { manifestSchema, type Manifest } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { restore } from '../../src/snapshots/restore.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { openFileStore } from '../../src/stores/file.js';
import { openS3Store } from '../../src/stores/s3.js';
import { onePart } from '../../src/stores/parts.js';
import { S3_CREDENTIALS, startS3Server } from '../helpers/s3-server.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { testBytes } from '../helpers/seed.js';

const MIB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let dir: string;
let step: TestStepContext | undefined;
const savedEnv = { ...process.env };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dedup-test-'));
});

afterEach(async () => {
  step?.dispose();
  step = undefined;
  await rm(dir, { recursive: true, force: true });
  process.env = { ...savedEnv };
});

const source = () => join(dir, 'src');
const repo = () => join(dir, 'repo');

async function write(files: Record<string, Buffer>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(source(), name)), { recursive: true });
    await writeFile(join(source(), name), content);
  }
}

async function snapshot(raw: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  step = testStepContext({ timeoutMs: 30_000 });
  const options = snapshotOptionsSchema.parse({ paths: [join(source(), 'ckpt')], to: `file://${repo()}/`, mode: 'dedup', ...raw });
  const detail = (await snapshotStep.run(options, step.context)) as Record<string, unknown>;
  step.dispose();
  step = undefined;
  return detail;
}

const restoreLatest = (to: string, from = `file://${repo()}/`, extra: Record<string, unknown> = {}) =>
  restore({ from, latest: true, to, log: silentLogger(), signal: new AbortController().signal, ...extra });

async function latestManifest() {
  const pointer = JSON.parse(await readFile(join(repo(), 'latest.json'), 'utf8')) as { manifest: string };
  return { name: pointer.manifest, manifest: manifestSchema.parse(JSON.parse(await readFile(join(repo(), pointer.manifest), 'utf8'))) };
}

/** The pack objects in the repository (a snapshot writes no chunk objects). */
async function packFiles(): Promise<string[]> {
  return (await readdir(join(repo(), 'packs')).catch((): string[] => [])).filter((name) => !name.endsWith('.partial')).sort();
}

/** Every chunk `manifest` names, located in a pack. */
function packedChunks(manifest: Manifest): [string, number, string, number][] {
  return manifest.files.flatMap((file) => (file.type === 'file' ? file.chunks! : [])).map((chunk) => {
    expect(chunk).toHaveLength(4);
    return chunk as [string, number, string, number];
  });
}

describe('dedup snapshots', () => {
  test('a second checkpoint sends only its new chunks, an insertion included, and restore --latest rebuilds it verified', async () => {
    const model = testBytes(8 * MIB);
    await write({ 'ckpt/model.pt': model, 'ckpt/frozen.pt': testBytes(3 * MIB), 'ckpt/config.json': Buffer.from('{"lr": 0.1}') });
    const first = await snapshot();
    expect(first).toMatchObject({ mode: 'dedup', complete: true, bytesSent: 11 * MIB + 11 });
    // Every chunk is a range of a pack that hashes to its name; no chunk objects, no pack per chunk.
    expect(await readdir(repo())).not.toContain('chunks');
    const firstChunks = packedChunks((await latestManifest()).manifest);
    for (const [name, size, pack, offset] of firstChunks) expect(sha256((await readFile(join(repo(), 'packs', pack))).subarray(offset, offset + size))).toBe(name);
    expect((await packFiles()).length).toBeLessThan(firstChunks.length / 4);

    // 64 KiB inserted in the middle shifts every later byte; a renamed copy of frozen.pt is the same content.
    const grown = Buffer.concat([model.subarray(0, 4 * MIB), testBytes(64 * 1024), model.subarray(4 * MIB)]);
    await write({ 'ckpt/model.pt': grown, 'ckpt/frozen-copy.pt': await readFile(join(source(), 'ckpt/frozen.pt')) });
    const second = await snapshot();
    expect(second).toMatchObject({ complete: true, bytesDone: grown.length + 6 * MIB + 11 });
    // The insertion re-sends the chunk it falls in and its neighbour at most: a few hundred KiB, not 4 MiB.
    expect(second.bytesSent).toBeGreaterThan(64 * 1024);
    expect(second.bytesSent).toBeLessThan(2 * MIB);

    const { name, manifest } = await latestManifest();
    expect(name).toMatch(/^snapshots\/\d{8}T\d{6}\.\d{3}Z-.+-[0-9a-f]{8}\.json$/);
    expect(manifest).toMatchObject({ version: 2, mode: 'dedup', chunker: CHUNKER_VERSION, complete: true });
    expect((await readdir(join(repo(), 'snapshots'))).length).toBe(2);

    const result = await restoreLatest(join(dir, 'out'));
    expect(result).toMatchObject({ files: 4, present: 0 });
    expect(sha256(await readFile(join(dir, 'out/ckpt/model.pt')))).toBe(sha256(grown));
    expect(sha256(await readFile(join(dir, 'out/ckpt/frozen-copy.pt')))).toBe(sha256(await readFile(join(source(), 'ckpt/frozen.pt'))));
    expect(await readFile(join(dir, 'out/ckpt/config.json'), 'utf8')).toBe('{"lr": 0.1}');
  });

  test('an unchanged tree sends nothing the second time and writes no pack; its manifest names the same packs', async () => {
    await write({ 'ckpt/a.bin': testBytes(2 * MIB), 'ckpt/b.bin': testBytes(100) });
    await snapshot();
    const packs = await packFiles();
    const first = (await latestManifest()).manifest.files;
    expect(await snapshot()).toMatchObject({ complete: true, bytesSent: 0 });
    expect(await packFiles()).toEqual(packs);
    expect((await latestManifest()).manifest.files).toEqual(first);
  });

  test('many small files are stored in far fewer objects than files, and restore byte-identical', async () => {
    const files = Object.fromEntries(Array.from({ length: 60 }, (_, index) => [`ckpt/shard-${String(index).padStart(2, '0')}.bin`, testBytes(20 * 1024 + index)]));
    await write(files);
    expect(await snapshot()).toMatchObject({ complete: true, files: 60 });
    // 1.2 MB in all: one pack, stored once the last file is read.
    expect((await packFiles()).length).toBe(1);
    await restoreLatest(join(dir, 'out'));
    for (const [name, content] of Object.entries(files)) expect(sha256(await readFile(join(dir, 'out', name)))).toBe(sha256(content));
  });

  test('a single small file is stored at once, in one pack', async () => {
    await write({ 'ckpt/config.json': Buffer.from('{"lr": 0.1}') });
    expect(await snapshot()).toMatchObject({ complete: true, bytesSent: 11 });
    expect((await packFiles()).length).toBe(1);
  });

  test('chunks an earlier, uncommitted snapshot stored are not looked for (no HEAD per chunk): they go again in a new pack', async () => {
    const a = testBytes(2 * MIB);
    await write({ 'ckpt/a.bin': a });
    await snapshot();
    const cut = await packFiles();
    await rm(join(repo(), 'latest.json'));
    expect(await snapshot()).toMatchObject({ complete: true, bytesSent: 2 * MIB });
    const named = new Set(packedChunks((await latestManifest()).manifest).map(([, , pack]) => pack));
    for (const pack of cut) expect(named.has(pack)).toBe(false);
    await restoreLatest(join(dir, 'out'));
    expect(sha256(await readFile(join(dir, 'out/ckpt/a.bin')))).toBe(sha256(a));
  });

  test('a warm restore leaves files already in place with the same content and fetches the rest', async () => {
    const files = { 'ckpt/a.bin': testBytes(2 * MIB), 'ckpt/b.bin': testBytes(MIB) };
    await write(files);
    await snapshot();
    const out = join(dir, 'out');
    await restoreLatest(out);
    await writeFile(join(out, 'ckpt/b.bin'), testBytes(MIB));
    const result = await restoreLatest(out);
    expect(result).toMatchObject({ files: 2, present: 1 });
    expect(sha256(await readFile(join(out, 'ckpt/b.bin')))).toBe(sha256(files['ckpt/b.bin']));
  });

  test('a corrupted chunk fails the restore naming it, and leaves nothing under the final name', async () => {
    await write({ 'ckpt/a.bin': testBytes(MIB) });
    await snapshot();
    const [[chunk, size, pack]] = packedChunks((await latestManifest()).manifest) as [[string, number, string, number]];
    const path = join(repo(), 'packs', pack);
    const bytes = await readFile(path);
    bytes[10] = bytes[10]! ^ 0xff;
    await writeFile(path, bytes);
    const out = join(dir, 'out');
    await expect(restoreLatest(out)).rejects.toThrow(new RegExp(`ckpt/a.bin: download failed: chunk ${chunk} \\(bytes 0\\+${size} of file://.*packs/${pack}\\) has SHA-256 [0-9a-f]{64}: corrupted`));
    expect(await readdir(join(out, 'ckpt'))).toEqual([]);
  });

  test('a missing chunk and a crafted pointer are clear errors', async () => {
    await write({ 'ckpt/a.bin': testBytes(MIB) });
    await snapshot();
    const [[chunk, , pack]] = packedChunks((await latestManifest()).manifest) as [[string, number, string, number]];
    await rm(join(repo(), 'packs', pack));
    await expect(restoreLatest(join(dir, 'out'))).rejects.toThrow(new RegExp(`cannot read chunk ${chunk} .*packs/${pack}`));

    await writeFile(join(repo(), 'latest.json'), JSON.stringify({ version: 1, manifest: '../../etc/passwd', finishedAt: 'x' }));
    await expect(restoreLatest(join(dir, 'out2'))).rejects.toThrow(/latest\.json is not a preemptd snapshot pointer: manifest: expected snapshots\/<name>\.json/);

    await rm(join(repo(), 'latest.json'));
    await expect(restoreLatest(join(dir, 'out3'))).rejects.toThrow(/has no latest\.json: no complete dedup snapshot/);
  });

  test("a manifest whose chunk sizes do not add up to the file's size is refused", async () => {
    await write({ 'ckpt/a.bin': testBytes(MIB) });
    await snapshot();
    const { name } = await latestManifest();
    const raw = JSON.parse(await readFile(join(repo(), name), 'utf8')) as { files: { chunks: [string, number][] }[] };
    raw.files[0]!.chunks[0]![1] += 1;
    await writeFile(join(repo(), name), JSON.stringify(raw));
    await expect(restoreLatest(join(dir, 'out'))).rejects.toThrow(/is not a preemptd manifest: files\.0\.chunks: chunk sizes do not add up to the file's size 1048576/);
  });
});

describe('ObjectStore.has', () => {
  const storeOptions = () => ({ partSize: 8 * MIB, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });

  test('file store: true for a stored object, false for none', async () => {
    const store = openFileStore({ scheme: 'file', directory: repo(), prefix: '' }, storeOptions());
    await store.put('x/y', onePart(Buffer.from('data')));
    expect(await store.has('x/y')).toBe(true);
    expect(await store.has('x/z')).toBe(false);
  });

  test('S3 store against s3rver: HEAD says whether the object exists; a dedup snapshot and restore --latest work there', async () => {
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    const server = await startS3Server();
    const s3 = { endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' };
    try {
      const store = openS3Store({ scheme: 's3', bucket: server.bucket, prefix: '' }, { ...storeOptions(), ...s3 });
      await store.put('p/object', onePart(Buffer.from('data')));
      expect(await store.has('p/object')).toBe(true);
      expect(await store.has('p/none')).toBe(false);
      await store.close();

      const model = testBytes(3 * MIB);
      await write({ 'ckpt/model.pt': model });
      await snapshot({ to: `s3://${server.bucket}/repo/`, ...s3 });
      expect(await snapshot({ to: `s3://${server.bucket}/repo/`, ...s3 })).toMatchObject({ complete: true, bytesSent: 0 });
      await restoreLatest(join(dir, 'out'), `s3://${server.bucket}/repo/`, s3);
      expect(sha256(await readFile(join(dir, 'out/ckpt/model.pt')))).toBe(sha256(model));
    } finally {
      await server.close();
    }
  });
});
