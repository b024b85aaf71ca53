import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { silentLogger } from '../../src/lib/log.js';
import { restore } from '../../src/snapshots/restore.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { manifestSchema } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { S3_CREDENTIALS, startS3Server, testS3Client, type S3TestServer } from '../helpers/s3-server.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { testBytes } from '../helpers/seed.js';

const MIB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const crc32Hex = (data: Buffer) => crc32(data).toString(16).padStart(8, '0');

let dir: string;
let server: S3TestServer;
let step: TestStepContext | undefined;
const savedEnv = { ...process.env };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'restore-test-'));
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  server = await startS3Server();
});

afterEach(async () => {
  step?.dispose();
  step = undefined;
  await server.close();
  await rm(dir, { recursive: true, force: true });
  process.env = { ...savedEnv };
});

const source = () => join(dir, 'src');
const s3 = () => ({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' });

/** A checkpoint tree: one multipart-sized file, small ones, a nested dir, an internal link. */
async function writeCheckpoint(): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {
    'ckpt/model.pt': testBytes(6 * MIB),
    'ckpt/optim.pt': testBytes(70_000),
    'ckpt/logs/train.log': Buffer.from('step 1 loss 0.5\n'.repeat(1000)),
    'ckpt/empty': Buffer.alloc(0),
  };
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(source(), name)), { recursive: true });
    await writeFile(join(source(), name), content);
  }
  await symlink('model.pt', join(source(), 'ckpt/latest.pt'));
  return files;
}

async function snapshot(raw: Record<string, unknown>): Promise<void> {
  step = testStepContext({ timeoutMs: 20_000 });
  await snapshotStep.run(snapshotOptionsSchema.parse({ paths: [join(source(), 'ckpt')], ...s3(), partSize: '5MiB', ...raw }), step.context);
}

async function expectRestored(into: string, files: Record<string, Buffer>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    expect(sha256(await readFile(join(into, name)))).toBe(sha256(content));
  }
  expect(await readlink(join(into, 'ckpt/latest.pt'))).toBe('model.pt');
}

describe('restore', () => {
  test.each([
    ['crc32', crc32Hex],
    ['sha256', sha256],
  ] as const)('round-trips a files-mode snapshot with %s checksums and verifies every one', async (checksum, expected) => {
    const files = await writeCheckpoint();
    await snapshot({ to: 's3://snapshots/rt/', checksum });

    const result = await restore({ from: 's3://snapshots/rt/', to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal, ...s3() });

    await expectRestored(join(dir, 'out'), files);
    expect(result).toMatchObject({ files: 4, links: 1, bytes: 6 * MIB + 70_000 + 16_000 });
    expect(result.manifest.checksum).toBe(checksum);
    const model = result.manifest.files.find((file) => file.path === 'ckpt/model.pt');
    expect(model).toMatchObject({ [checksum]: expected(files['ckpt/model.pt']!) });
  });

  test.each(['none', 'gzip', 'zstd'] as const)('round-trips an archive-mode snapshot (compression %s) streamed as one object', async (compression) => {
    const files = await writeCheckpoint();
    await snapshot({ to: 's3://snapshots/ar/', mode: 'archive', compression });

    const listed = await testS3Client(server).send(new ListObjectsV2Command({ Bucket: server.bucket }));
    const archiveKey = { none: 'ar/snapshot.tar', gzip: 'ar/snapshot.tar.gz', zstd: 'ar/snapshot.tar.zst' }[compression];
    expect((listed.Contents ?? []).map((object) => object.Key).sort()).toEqual(['ar/manifest.json', archiveKey]);
    const manifestBody = await testS3Client(server).send(new GetObjectCommand({ Bucket: server.bucket, Key: 'ar/manifest.json' }));
    const manifest = manifestSchema.parse(JSON.parse(await manifestBody.Body!.transformToString()));
    expect(manifest.archive).toMatchObject({ key: archiveKey.slice(3), compression });
    expect(manifest.files.map((file) => file.path)).toEqual(['ckpt/empty', 'ckpt/latest.pt', 'ckpt/logs/train.log', 'ckpt/model.pt', 'ckpt/optim.pt']);

    await restore({ from: 's3://snapshots/ar/manifest.json', to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal, ...s3() });

    await expectRestored(join(dir, 'out'), files);
  });

  test('detects an object whose bytes no longer match the manifest and leaves no file for it', async () => {
    await writeCheckpoint();
    await snapshot({ to: 's3://snapshots/bad/' });
    await testS3Client(server).send(new PutObjectCommand({ Bucket: server.bucket, Key: 'bad/ckpt/optim.pt', Body: testBytes(70_000) }));

    const run = restore({ from: 's3://snapshots/bad/', to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal, ...s3() });

    await expect(run).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringMatching(/1 of 4 files failed verification:\n  ckpt\/optim\.pt: crc32 [0-9a-f]{8}, manifest says [0-9a-f]{8}$/) });
    await expect(lstat(join(dir, 'out/ckpt/optim.pt'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readFile(join(dir, 'out/ckpt/model.pt'))).length).toBe(6 * MIB);
  });

  /** Stores a hand-written manifest of one file `x` (sha256 of "x") under `prefix` and restores it. */
  async function restoreHandWritten(prefix: string, checksum: string, path: string) {
    const manifest = {
      version: 1, mode: 'files', checksum, archive: null, notice: {}, host: {}, startedAt: '', finishedAt: '', deadline: '',
      complete: true, bytesWanted: 1, bytesDone: 1, skipped: [], excluded: 0,
      files: [{ type: 'file', path, size: 1, mtime: new Date().toISOString(), mode: 0o644, sha256: sha256(Buffer.from('x')) }],
    };
    await testS3Client(server).send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}/manifest.json`, Body: JSON.stringify(manifest) }));
    return restore({ from: `s3://snapshots/${prefix}/`, to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal, ...s3() });
  }

  test('refuses a manifest whose paths would leave the restore directory', async () => {
    await expect(restoreHandWritten('evil', 'sha256', '../escape.txt')).rejects.toThrow('manifest path "../escape.txt" would leave the restore directory');
  });

  test('refuses a manifest whose files lack the checksum it names, saying which', async () => {
    await expect(restoreHandWritten('partial', 'crc32', 'x.txt')).rejects.toThrow(
      "s3://snapshots/partial/manifest.json is not a preemptd manifest: files.0.crc32: missing: the manifest's checksum is crc32",
    );
  });

  test('says clearly when there is no snapshot at the location', async () => {
    const run = restore({ from: 's3://snapshots/none/', to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal, ...s3() });

    await expect(run).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringContaining('cannot read s3://snapshots/none/manifest.json') });
  });

  test('round-trips through a file:// directory', async () => {
    const files = await writeCheckpoint();
    step = testStepContext();
    await snapshotStep.run(snapshotOptionsSchema.parse({ paths: [join(source(), 'ckpt')], to: `file://${dir}/nfs/` }), step.context);

    await restore({ from: `file://${dir}/nfs/`, to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal });

    await expectRestored(join(dir, 'out'), files);
  });
});
