import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { silentLogger } from '../../src/lib/log.js';
import { manifestSchema } from '../../src/snapshots/manifest.js';
import { restore } from '../../src/snapshots/restore.js';
import { TestResources } from '../helpers/resources.js';
import { S3_CREDENTIALS, startS3Server, testS3Client, type S3TestServer } from '../helpers/s3-server.js';
import { startSyncDaemon } from '../helpers/sync-daemon.js';
import { testBytes } from '../helpers/seed.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-sync-s3-');
const MIB = 1024 * 1024;
let server: S3TestServer;
const savedEnv = { ...process.env };

beforeEach(async () => {
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  server = await startS3Server();
});

afterEach(async () => {
  await resources.cleanUp();
  await server.close();
  process.env = { ...savedEnv };
});

async function getText(key: string): Promise<string | undefined> {
  try {
    return await (await testS3Client(server).send(new GetObjectCommand({ Bucket: server.bucket, Key: key }))).Body!.transformToString();
  } catch {
    return undefined;
  }
}

test('a sync to S3 stores and commits a settled checkpoint without any notice; restore --latest from S3 gives it back byte-identical', async () => {
  const dir = resources.tempDir();
  const ckpt = join(dir, 'ckpt');
  await mkdir(join(ckpt, 'shards'), { recursive: true });
  // One file larger than a multipart part (8 MiB), one small, one empty.
  const files: Record<string, Buffer> = { 'model.pt': testBytes(10 * MIB), 'shards/optim.pt': testBytes(300_000), 'shards/empty': Buffer.alloc(0) };
  for (const [name, content] of Object.entries(files)) await writeFile(join(ckpt, name), content);
  const s3 = { endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' };
  const { daemon } = await startSyncDaemon(resources, join(dir, 'state'), { paths: [ckpt], to: `s3://${server.bucket}/trainer/`, settle: '200ms', ...s3 });
  await until(async () => (await getText('trainer/latest.json')) !== undefined, 30_000);
  // The pointer is readable a moment before its put returns to the sync, which then notes the commit.
  await until(() => daemon.syncs.status()[0]!.lastCommitAt !== null);
  const status = daemon.syncs.status()[0]!;
  expect(status).toMatchObject({ name: 'ckpt', backlogFiles: 0, lastError: null });
  expect(status.lastCommitAt).not.toBeNull();

  // No notice was ever raised: the pointer names a complete manifest of the sync, and the packs its chunks are in are in the bucket.
  const pointer = JSON.parse((await getText('trainer/latest.json'))!) as { manifest: string };
  const manifest = manifestSchema.parse(JSON.parse((await getText(`trainer/${pointer.manifest}`))!));
  expect(manifest).toMatchObject({ mode: 'dedup', complete: true, notice: { sync: 'ckpt' } });
  expect(manifest.files.map((file) => file.path).sort()).toEqual(['ckpt/model.pt', 'ckpt/shards/empty', 'ckpt/shards/optim.pt']);
  const listed = await testS3Client(server).send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'trainer/packs/' }));
  const stored = new Set((listed.Contents ?? []).map((object) => object.Key!.split('/').pop()));
  for (const file of manifest.files) if (file.type === 'file') for (const chunk of file.chunks ?? []) expect(stored).toContain(chunk[2]);

  const out = join(dir, 'restored');
  await restore({ from: `s3://${server.bucket}/trainer/`, latest: true, to: out, log: silentLogger(), signal: new AbortController().signal, ...s3 });
  for (const [name, content] of Object.entries(files)) expect((await readFile(join(out, 'ckpt', name))).equals(content)).toBe(true);
}, 60_000);
