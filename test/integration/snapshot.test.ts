import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { silentLogger } from '../../src/lib/log.js';
import { StepFailure } from '../../src/lib/errors.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { manifestSchema, type Manifest } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { openFileStore } from '../../src/stores/file.js';
import { onePart } from '../../src/stores/parts.js';
import { S3_CREDENTIALS, startS3Server, testS3Client, type S3ServerOptions, type S3TestServer } from '../helpers/s3-server.js';
import { testNotice, testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { testBytes } from '../helpers/seed.js';

const MIB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const crc32Hex = (data: Buffer) => crc32(data).toString(16).padStart(8, '0');

let dir: string;
let server: S3TestServer | undefined;
let step: TestStepContext | undefined;
const savedEnv = { ...process.env };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-test-'));
  // The SDK's default chain finds these first; it never gets as far as IMDS.
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});

afterEach(async () => {
  step?.dispose();
  step = undefined;
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
  process.env = { ...savedEnv };
});

async function writeTree(files: Record<string, Buffer | string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
}

async function getObject(s3: S3TestServer, key: string): Promise<Buffer> {
  const response = await testS3Client(s3).send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

async function listKeys(s3: S3TestServer): Promise<string[]> {
  const response = await testS3Client(s3).send(new ListObjectsV2Command({ Bucket: s3.bucket }));
  return (response.Contents ?? []).map((object) => object.Key!).sort();
}

async function readManifest(s3: S3TestServer, prefix: string): Promise<Manifest> {
  return manifestSchema.parse(JSON.parse((await getObject(s3, `${prefix}manifest.json`)).toString()));
}

async function runS3Snapshot(raw: Record<string, unknown>, options: { timeoutMs?: number; server?: S3ServerOptions } = {}) {
  server ??= await startS3Server(options.server);
  const parsed = snapshotOptionsSchema.parse({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', ...raw });
  step = testStepContext({ timeoutMs: options.timeoutMs ?? 20_000, notice: testNotice() });
  return snapshotStep.run(parsed, step.context);
}

describe('snapshot step, files mode on S3', () => {
  test('stores one object per file under the prefix and writes a manifest with sizes, times and CRC32 checksums', async () => {
    const weights = testBytes(300_000);
    await writeTree({ 'ckpt/model.pt': weights, 'ckpt/optim/state.pt': 'optimizer', 'train.log': 'step 1\n' });
    await utimes(join(dir, 'ckpt/model.pt'), new Date('2030-01-02T03:04:05Z'), new Date('2030-01-02T03:04:05Z'));

    const detail = await runS3Snapshot({ paths: [join(dir, 'ckpt'), join(dir, 'train.log')], to: 's3://snapshots/run1/' });

    expect(await listKeys(server!)).toEqual(['run1/ckpt/model.pt', 'run1/ckpt/optim/state.pt', 'run1/manifest.json', 'run1/train.log']);
    expect(sha256(await getObject(server!, 'run1/ckpt/model.pt'))).toBe(sha256(weights));
    const manifest = await readManifest(server!, 'run1/');
    expect(manifest.files).toEqual([
      { type: 'file', path: 'ckpt/model.pt', size: 300_000, mtime: '2030-01-02T03:04:05.000Z', mode: expect.any(Number), crc32: crc32Hex(weights) },
      expect.objectContaining({ path: 'ckpt/optim/state.pt', size: 9, crc32: crc32Hex(Buffer.from('optimizer')) }),
      expect.objectContaining({ path: 'train.log', size: 7 }),
    ]);
    expect(manifest).toMatchObject({
      mode: 'files',
      checksum: 'crc32',
      complete: true,
      bytesWanted: 300_016,
      bytesDone: 300_016,
      skipped: [],
      notice: { id: 'aws-terminate-0123456789abcdef', kind: 'terminate' },
      host: { hostname: expect.any(String) },
    });
    expect(Date.parse(manifest.finishedAt)).toBeGreaterThanOrEqual(Date.parse(manifest.startedAt));
    expect(detail).toMatchObject({ to: 's3://snapshots/run1/', files: 3, bytesDone: 300_016, complete: true });
  });

  test('fills {instanceId} {noticeId} {hostname} {timestamp} and {kind} in to: from the notice', async () => {
    await writeTree({ 'a.txt': 'a' });
    server = await startS3Server();
    const parsed = snapshotOptionsSchema.parse({
      paths: [join(dir, 'a.txt')],
      to: 's3://snapshots/{instanceId}/{kind}/{timestamp}/{noticeId}/{hostname}/',
      endpoint: server.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
    });
    step = testStepContext({ notice: testNotice({ detectedAt: new Date('2026-04-11T22:26:58.123Z'), instance: { id: 'i-0abc/123' } }) });
    await snapshotStep.run(parsed, step.context);

    const prefix = `i-0abc-123/terminate/20260411T222658Z/aws-terminate-0123456789abcdef/${step.context.host.hostname}/`;
    expect(await listKeys(server)).toEqual([`${prefix}a.txt`, `${prefix}manifest.json`]);
  });

  test('uploads a file larger than the part size in parts, each with its CRC32, and it arrives whole', async () => {
    const big = testBytes(12 * MIB + 12345);
    await writeTree({ 'big.bin': big });

    await runS3Snapshot({ paths: [join(dir, 'big.bin')], to: 's3://snapshots/mp/', partSize: '5MiB' });

    const crc32Of = (data: Buffer) => {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(crc32(data));
      return bytes.toString('base64');
    };
    expect(server!.partRequests.map((part) => [part.partNumber, part.checksumCrc32]).sort()).toEqual([
      [1, crc32Of(big.subarray(0, 5 * MIB))],
      [2, crc32Of(big.subarray(5 * MIB, 10 * MIB))],
      [3, crc32Of(big.subarray(10 * MIB))],
    ]);
    expect(sha256(await getObject(server!, 'mp/big.bin'))).toBe(sha256(big));
    expect((await readManifest(server!, 'mp/')).files[0]).toMatchObject({ size: big.length, crc32: crc32Hex(big) });
  });

  test('retries part uploads the server failed, and the object is still whole', async () => {
    const big = testBytes(11 * MIB);
    await writeTree({ 'big.bin': big });

    await runS3Snapshot(
      { paths: [join(dir, 'big.bin')], to: 's3://snapshots/retry/', partSize: '5MiB' },
      { server: { failPart: (part) => part.partNumber === 2 && part.attempt === 1 } },
    );

    expect(server!.partRequests.filter((part) => part.partNumber === 2).map((part) => part.attempt)).toEqual([1, 2]);
    expect(sha256(await getObject(server!, 'retry/big.bin'))).toBe(sha256(big));
  });

  test('a part the server keeps refusing fails only its file: that upload is aborted, the other files are stored', async () => {
    await writeTree({ 'bad.bin': testBytes(11 * MIB), 'good.bin': testBytes(11 * MIB) });

    const run = runS3Snapshot(
      { paths: [join(dir, 'bad.bin'), join(dir, 'good.bin')], to: 's3://snapshots/refused/', partSize: '5MiB' },
      { server: { failPart: (part) => part.key.endsWith('bad.bin') && part.partNumber === 2 } },
    );

    await expect(run).rejects.toThrow(/incomplete: stored 1 files.*bad\.bin: upload failed: injected part failure/);
    expect(server!.partRequests.filter((part) => part.key.endsWith('bad.bin') && part.partNumber === 2).map((part) => part.attempt)).toEqual([1, 2, 3]);
    const uploads = await testS3Client(server!).send(new ListMultipartUploadsCommand({ Bucket: server!.bucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
    expect(await listKeys(server!)).toEqual(['refused/good.bin', 'refused/manifest.json']);
    const manifest = await readManifest(server!, 'refused/');
    expect(manifest.skipped).toEqual([{ path: join(dir, 'bad.bin'), reason: expect.stringMatching(/^upload failed: injected part failure/) }]);
  });

  test('records symlinks as links without following them, and leaves out excluded files', async () => {
    await writeTree({ 'ckpt/model.pt': 'weights', 'ckpt/tmp/scratch.bin': 'x', 'ckpt/partial.tmp': 'x', 'outside/secret.txt': 'secret' });
    await symlink('model.pt', join(dir, 'ckpt/latest.pt'));
    await symlink(join(dir, 'outside'), join(dir, 'ckpt/escape'));

    await runS3Snapshot({ paths: [join(dir, 'ckpt')], exclude: ['*.tmp', '**/ckpt/tmp'], to: 's3://snapshots/links/' });

    expect(await listKeys(server!)).toEqual(['links/ckpt/model.pt', 'links/manifest.json']);
    const manifest = await readManifest(server!, 'links/');
    expect(manifest.files).toEqual([
      { type: 'symlink', path: 'ckpt/escape', target: join(dir, 'outside') },
      { type: 'symlink', path: 'ckpt/latest.pt', target: 'model.pt' },
      expect.objectContaining({ type: 'file', path: 'ckpt/model.pt' }),
    ]);
    expect(manifest.excluded).toBe(2);
  });

  test('a glob picks matching files and directories; a missing path is reported as skipped and fails the step', async () => {
    await writeTree({ 'ckpt/step-1/model.pt': '1', 'ckpt/step-2/model.pt': '2', 'ckpt/notes.txt': 'n' });

    const run = runS3Snapshot({ paths: [join(dir, 'ckpt/step-*'), join(dir, 'nope')], to: 's3://snapshots/glob/' });

    await expect(run).rejects.toThrow(StepFailure);
    await expect(run).rejects.toThrow(/incomplete.*nope: not found/);
    const manifest = await readManifest(server!, 'glob/');
    expect(manifest.files.map((file) => file.path)).toEqual(['ckpt/step-1/model.pt', 'ckpt/step-2/model.pt']);
    expect(manifest.skipped).toEqual([{ path: join(dir, 'nope'), reason: 'not found' }]);
    expect(manifest.complete).toBe(false);
  });

  test('at the deadline it cancels unfinished uploads, leaves no multipart upload behind and lists what completed', async () => {
    await writeTree({ 'small.txt': 'done in time', 'big.bin': testBytes(11 * MIB) });

    const run = runS3Snapshot(
      { paths: [dir], to: 's3://snapshots/cut/', partSize: '5MiB', priority: 'smallest', reserve: '1s' },
      { timeoutMs: 3000, server: { partDelayMs: 10_000 } },
    );

    const failure = (await run.then(() => null, (error: unknown) => error)) as StepFailure;
    expect(failure).toBeInstanceOf(StepFailure);
    expect(failure.detail).toMatchObject({ complete: false, bytesDone: 12, bytesWanted: 11 * MIB + 12 });
    const uploads = await testS3Client(server!).send(new ListMultipartUploadsCommand({ Bucket: server!.bucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
    const manifest = await readManifest(server!, 'cut/');
    expect(manifest.files.map((file) => file.path)).toEqual([expect.stringMatching(/small\.txt$/)]);
    expect(manifest.skipped).toEqual([{ path: join(dir, 'big.bin'), reason: 'cut by the deadline' }]);
    expect(await listKeys(server!)).toEqual(['cut/manifest.json', expect.stringMatching(/^cut\/.*small\.txt$/)]);
    expect(step!.context.signal.aborted).toBe(false);
  });

  test('logs progress with bytes, rate and time to the deadline, and reports it to the executor', async () => {
    await writeTree({ 'big.bin': testBytes(11 * MIB) });

    await runS3Snapshot(
      { paths: [join(dir, 'big.bin')], to: 's3://snapshots/progress/', partSize: '5MiB', progressInterval: '100ms' },
      { server: { partDelayMs: 150 } },
    );

    const lines = step!.logs.filter((line) => line.msg === 'snapshot progress');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]).toMatchObject({ bytesWanted: 11 * MIB, deadlineInMs: expect.any(Number), bytesDone: expect.any(Number) });
    expect(step!.progress.length).toBe(lines.length);
  });
});

describe('snapshot step, file:// destination', () => {
  test('copies files into the directory with a manifest and leaves no partial files', async () => {
    await writeTree({ 'src/ckpt/a.bin': testBytes(1000), 'src/ckpt/b/c.txt': 'c' });
    const target = join(dir, 'nfs');
    const parsed = snapshotOptionsSchema.parse({ paths: [join(dir, 'src/ckpt')], to: `file://${target}/{kind}/` });
    step = testStepContext();

    await snapshotStep.run(parsed, step.context);

    expect(await readFile(join(target, 'terminate/ckpt/b/c.txt'), 'utf8')).toBe('c');
    const manifest = manifestSchema.parse(JSON.parse(await readFile(join(target, 'terminate/manifest.json'), 'utf8')));
    expect(manifest.files.map((file) => file.path)).toEqual(['ckpt/a.bin', 'ckpt/b/c.txt']);
    expect(manifest.complete).toBe(true);
    expect((await readdir(target, { recursive: true })).sort()).toEqual(['terminate', 'terminate/ckpt', 'terminate/ckpt/a.bin', 'terminate/ckpt/b', 'terminate/ckpt/b/c.txt', 'terminate/manifest.json']);
  });

  test('a put cut part-way fails with AbortError, writes each part it got, and its partial file is removed by cleanup', async () => {
    const target = join(dir, 'nfs');
    const cut = new AbortController();
    const store = openFileStore({ scheme: 'file', directory: target, prefix: '' }, { partSize: 5 * MIB, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
    const released: number[] = [];
    const written: number[] = [];
    async function* parts() {
      yield { ...onePart(Buffer.alloc(5 * MIB, 1))[0]!, release: () => released.push(1) };
      cut.abort();
      yield { ...onePart(Buffer.from('never written'))[0]!, release: () => released.push(2) };
    }

    const put = store.put('ckpt/model.pt', parts(), { signal: cut.signal, onBytes: (bytes) => written.push(bytes) });

    await expect(put).rejects.toMatchObject({ name: 'AbortError' });
    expect(written).toEqual([5 * MIB]);
    expect(released).toEqual([1]);
    expect(await readdir(join(target, 'ckpt'))).toEqual([expect.stringMatching(/^\.[0-9a-f]{8}\.partial$/)]);
    expect(await store.cleanup()).toEqual([]);
    expect(await readdir(join(target, 'ckpt'))).toEqual([]);
  });
});
