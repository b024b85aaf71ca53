import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { buildEvent } from '../src/notice/event.js';
import { hostFacts } from '../src/lib/host.js';
import { createLogger } from '../src/lib/log.js';
import type { Notice } from '../src/notice/notice.js';
import type { StepContext } from '../src/steps/types.js';
import { snapshotStep } from '../src/steps/snapshot/step.js';
import { snapshotOptionsSchema } from '../src/snapshots/options.js';
import { S3_CREDENTIALS, startS3Server } from '../test/helpers/s3-server.js';
import { flag } from './lib/args.js';
import { startDiscardSink } from './lib/discard-sink.js';

/**
 * Snapshot upload throughput: 2 GiB of checkpoint files (one 1.5 GiB file, 100 files of
 * 5.12 MiB) uploaded by the snapshot step, with its SHA-256 manifest and CRC32 part
 * checksums, run side by side in one go:
 *   1. to an S3 API discard sink on loopback (answers the multipart protocol, keeps nothing),
 *   2. the same files with Debian's `aws s3 cp --recursive` to the same sink, and the ratio,
 *   3. to @20minutes/s3rver (checks SigV4, stores to disk), against that server's own
 *      ceilings: a plain unsigned PUT loop of the same byte count, and plain unsigned
 *      requests making the same uploads (a multipart upload for the big file).
 * Every server and every upload runs in its own process; the agent's peak RSS is its
 * child's max RSS. The files are fresh, so they are read from the page cache.
 *
 * npm run bench -- snapshot-throughput [--data DIR (reuse, keep)] [--no-awscli] [--no-s3rver]
 *   [--part-size 16MiB] [--queue-size 4] [--concurrency 4] [--checksum crc32|sha256]
 */
const MIB = 1024 * 1024;
const BIG_FILE = 1536 * MIB;
const SMALL_FILES = 100;
const SMALL_FILE = 5.12 * MIB;
const BUCKET = 'bench';
const AWS_CLI = '/usr/bin/aws';
const TIME = '/usr/bin/time';

export default async function main(args: string[]): Promise<void> {
  const kept = flag(args, '--data');
  const dir = kept ?? (await mkdtemp(join(tmpdir(), 'snapshot-bench-')));
  const tuning = {
    ...(flag(args, '--part-size') ? { partSize: flag(args, '--part-size') } : {}),
    ...(flag(args, '--queue-size') ? { queueSize: Number(flag(args, '--queue-size')) } : {}),
    ...(flag(args, '--concurrency') ? { concurrency: Number(flag(args, '--concurrency')) } : {}),
    ...(flag(args, '--checksum') ? { checksum: flag(args, '--checksum') } : {}),
  };
  try {
    const total = await writeCheckpoints(dir);
    console.log(`data: ${(total / 2 ** 30).toFixed(2)} GiB in ${SMALL_FILES + 1} files (${dir}); options ${JSON.stringify(tuning)}`);

    const sink = await startServerChild('sink');
    const sinkBefore = await sink.cpuSeconds();
    const agent = await uploadInChild(sink.endpoint, dir, tuning);
    const sinkCpu = (await sink.cpuSeconds()) - sinkBefore;
    console.log(
      `agent → discard sink:   ${mbps(agent.bytes, agent.seconds)} MB/s (${agent.seconds.toFixed(2)} s), peak RSS ${(agent.maxRssKiB / 1024).toFixed(0)} MB, ` +
        `${(agent.cpuSeconds / (agent.bytes / 1e9)).toFixed(2)} CPU-s/GB (the sink: ${(sinkCpu / (agent.bytes / 1e9)).toFixed(2)})`,
    );
    if (args.includes('--no-awscli')) {
      console.log('aws s3 cp: skipped (--no-awscli)');
    } else if (!(await isDebianAwsCli())) {
      console.log(`aws s3 cp: skipped: Debian's awscli is not installed at ${AWS_CLI} (apt-get install awscli)`);
    } else {
      const sinkBeforeCli = await sink.cpuSeconds();
      const { seconds, cpuSeconds } = await awsCliUpload(sink.endpoint, dir);
      const sinkCpuCli = (await sink.cpuSeconds()) - sinkBeforeCli;
      const cpu = `${cpuSeconds === undefined ? '' : `, ${(cpuSeconds / (total / 1e9)).toFixed(2)} CPU-s/GB`} (the sink: ${(sinkCpuCli / (total / 1e9)).toFixed(2)})`;
      console.log(`aws s3 cp → discard sink: ${mbps(total, seconds)} MB/s (${seconds.toFixed(2)} s)${cpu}`);
      console.log(`ratio agent / aws s3 cp: ${(seconds / agent.seconds).toFixed(2)}x faster${cpuSeconds === undefined ? '' : `, ${(cpuSeconds / agent.cpuSeconds).toFixed(2)}x less CPU`}`);
    }
    sink.stop();

    if (args.includes('--no-s3rver')) return;
    const s3rver = await startServerChild('s3rver');
    const putCeiling = await plainPutLoop(s3rver.endpoint, total);
    console.log(`plain PUT loop → s3rver: ${mbps(total, putCeiling)} MB/s (${putCeiling.toFixed(2)} s): the server's ceiling for bytes`);
    const uploadCeiling = await plainMultipartLoop(s3rver.endpoint);
    console.log(`plain multipart loop → s3rver: ${mbps(total, uploadCeiling)} MB/s (${uploadCeiling.toFixed(2)} s): its ceiling for these uploads (it copies a multipart upload's parts into one file)`);
    const onS3rver = await uploadInChild(s3rver.endpoint, dir, tuning);
    const percent = (ceiling: number, seconds: number) => `${((100 * ceiling) / seconds).toFixed(0)} %`;
    console.log(
      `agent → s3rver (SigV4): ${mbps(onS3rver.bytes, onS3rver.seconds)} MB/s (${onS3rver.seconds.toFixed(2)} s): ${percent(uploadCeiling, onS3rver.seconds)} of the ceiling for these uploads, ` +
        `${percent(putCeiling, onS3rver.seconds)} of the one for bytes`,
    );
    console.log(`  of which sending: last byte at ${onS3rver.lastByteSeconds.toFixed(2)} s (${mbps(onS3rver.bytes, onS3rver.lastByteSeconds)} MB/s)`);
    s3rver.stop();
  } finally {
    if (!kept) await rm(dir, { recursive: true, force: true });
  }
}

function mbps(bytes: number, seconds: number): string {
  return (bytes / 1e6 / seconds).toFixed(0);
}

/** One 1.5 GiB file and 100 small ones; distinct bytes (a random block, counter-stamped). */
async function writeCheckpoints(dir: string): Promise<number> {
  const block = randomBytes(64 * MIB);
  let stamp = 0;
  const write = async (path: string, size: number) => {
    if (existsSync(path) && (await stat(path)).size === size) return;
    const handle = await open(path, 'w');
    try {
      for (let written = 0; written < size; written += block.length) {
        block.writeUInt32LE(stamp++, 0);
        await handle.write(block, 0, Math.min(block.length, size - written));
      }
    } finally {
      await handle.close();
    }
  };
  await mkdir(join(dir, 'ckpt/shards'), { recursive: true });
  await write(join(dir, 'ckpt/model.pt'), BIG_FILE);
  for (let i = 0; i < SMALL_FILES; i++) await write(join(dir, `ckpt/shards/shard-${String(i).padStart(3, '0')}.pt`), Math.round(SMALL_FILE));
  return BIG_FILE + SMALL_FILES * Math.round(SMALL_FILE);
}

interface ServerChild {
  endpoint: string;
  /** User + system CPU the server process used so far (it shares the cores with the client). */
  cpuSeconds(): Promise<number>;
  stop(): void;
}

/** Runs a server of this module in its own process, so it never shares a core's event loop with the client. */
async function startServerChild(role: 'sink' | 's3rver'): Promise<ServerChild> {
  const child = spawnRole(role, {});
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return {
    endpoint: (JSON.parse(line) as { endpoint: string }).endpoint,
    cpuSeconds: async () => {
      // /proc/PID/stat fields 14 and 15 (utime, stime), in clock ticks of 1/100 s on Linux.
      const fields = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    stop: () => child.kill('SIGTERM'),
  };
}

interface UploadFigures {
  seconds: number;
  /** When the last byte was sent; the rest is the server completing the upload. */
  lastByteSeconds: number;
  bytes: number;
  maxRssKiB: number;
  /** User + system CPU of the upload process: what the shared cores cost, whatever the load. */
  cpuSeconds: number;
}

async function uploadInChild(endpoint: string, dir: string, tuning: Record<string, unknown>): Promise<UploadFigures> {
  const child = spawnRole('upload', { endpoint, dir, tuning });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`upload child exited with ${code}`);
  return JSON.parse(output.trim().split('\n').pop()!) as UploadFigures;
}

function spawnRole(role: string, config: Record<string, unknown>): ChildProcess {
  const script = 'const [role, config] = process.argv.slice(1); const bench = await import(process.env.PREEMPTD_BENCH_MODULE); await bench.benchChild(role, JSON.parse(config));';
  return spawn(process.execPath, ['--input-type=module', '-e', script, role, JSON.stringify(config)], {
    env: { ...process.env, PREEMPTD_BENCH_MODULE: import.meta.url, AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Entry point of the child processes (not part of the bench API). */
export async function benchChild(role: string, config: { endpoint?: string; dir?: string; tuning?: Record<string, unknown> }): Promise<void> {
  if (role === 'sink' || role === 's3rver') {
    const server = role === 'sink' ? await startDiscardSink() : await startS3Server({ bucket: BUCKET });
    console.log(JSON.stringify({ endpoint: server.endpoint }));
    await once(process, 'SIGTERM');
    await server.close();
    return;
  }
  const options = snapshotOptionsSchema.parse({
    paths: [join(config.dir!, 'ckpt')],
    to: `s3://${BUCKET}/agent/{noticeId}/`,
    endpoint: config.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    // Fine-grained progress, to see when the last byte left (the server may take long to complete).
    progressInterval: '100ms',
    ...config.tuning,
  });
  const started = performance.now();
  let lastByteSeconds: number | undefined;
  const onProgress = (figures: Record<string, unknown>) => {
    if (lastByteSeconds === undefined && (figures.bytesDone as number) >= (figures.bytesWanted as number)) lastByteSeconds = (performance.now() - started) / 1000;
  };
  const detail = (await snapshotStep.run(options, benchContext(onProgress))) as { bytesDone: number };
  const seconds = (performance.now() - started) / 1000;
  const usage = process.resourceUsage();
  const cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
  console.log(JSON.stringify({ seconds, lastByteSeconds: lastByteSeconds ?? seconds, bytes: detail.bytesDone, maxRssKiB: usage.maxRSS, cpuSeconds }));
}

function benchContext(onProgress: (figures: Record<string, unknown>) => void): StepContext {
  const notice: Notice = {
    id: 'aws-terminate-bench',
    provider: 'aws',
    kind: 'terminate',
    deadline: new Date(Date.now() + 600_000),
    detectedAt: new Date(),
    instance: { id: 'i-bench' },
    raw: {},
  };
  const host = hostFacts();
  return {
    stepName: 'bench',
    notice,
    host,
    log: createLogger({ level: 'warn', destination: process.stderr }),
    signal: new AbortController().signal,
    deadline: Date.now() + 600_000,
    planDeadline: null,
    followsStartedAt: notice.detectedAt.getTime(),
    event: (type) => buildEvent(type, notice, host, null),
    finishedSteps: () => [],
    progress: onProgress,
  } as StepContext;
}

async function isDebianAwsCli(): Promise<boolean> {
  if (!existsSync(AWS_CLI)) return false;
  return promisify(execFile)('dpkg-query', ['-W', '-f', '${Status}', 'awscli']).then(
    ({ stdout }) => stdout.includes('installed'),
    () => false,
  );
}

/**
 * `aws s3 cp --recursive` with its defaults (8 MiB parts, 10 requests in flight), its CPU
 * read through /usr/bin/time when there is one.
 */
async function awsCliUpload(endpoint: string, dir: string): Promise<{ seconds: number; cpuSeconds: number | undefined }> {
  const config = join(dir, 'aws-config');
  const timing = join(dir, 'aws-time');
  await writeFile(config, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
  const timed = existsSync(TIME) ? [TIME, '-o', timing, '-f', '%U %S'] : [];
  const [command, ...prefix] = [...timed, AWS_CLI];
  const started = performance.now();
  const child = spawn(command!, [...prefix, 's3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', endpoint, join(dir, 'ckpt'), `s3://${BUCKET}/awscli/`], {
    env: { ...process.env, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`aws s3 cp exited with ${code}`);
  const seconds = (performance.now() - started) / 1000;
  if (!timed.length) return { seconds, cpuSeconds: undefined };
  const [user = 0, system = 0] = (await readFile(timing, 'utf8')).trim().split(/\s+/).map(Number);
  return { seconds, cpuSeconds: user + system };
}

interface PlainAnswer {
  text: string;
  etag: string | undefined;
}

/** Unsigned HTTP requests to a server on loopback, 4 sockets kept alive. */
function plainClient(endpoint: string): { send(method: string, path: string, body?: Buffer): Promise<PlainAnswer>; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const url = new URL(endpoint);
  return {
    send: (method, path, body) =>
      new Promise<PlainAnswer>((resolve, reject) => {
        const req = request({ host: url.hostname, port: url.port, method, path, agent, headers: { 'content-length': body?.length ?? 0 } }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve({ text, etag: res.headers.etag }) : reject(new Error(`${method} ${path} answered ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

/**
 * The server's own ceiling for bytes: unsigned 16 MiB PUTs of one in-memory buffer, 4 at a
 * time, no checksums, no file reads, the same byte count.
 */
async function plainPutLoop(endpoint: string, total: number): Promise<number> {
  const body = randomBytes(16 * MIB);
  const client = plainClient(endpoint);
  let next = 0;
  const count = Math.ceil(total / body.length);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) await client.send('PUT', `/${BUCKET}/ceiling/object-${next++}`, body);
    }),
  );
  client.close();
  return (performance.now() - started) / 1000;
}

/**
 * The server's ceiling for the same uploads as the agent's: the big file as a multipart upload
 * of 8 MiB parts, 4 in flight, then completed (s3rver copies the parts into one file), and the
 * small files as single PUTs, 4 at a time; unsigned, no checksums, bytes from memory.
 */
async function plainMultipartLoop(endpoint: string): Promise<number> {
  const partSize = 8 * MIB;
  const part = randomBytes(partSize);
  const small = part.subarray(0, Math.round(SMALL_FILE));
  const client = plainClient(endpoint);
  const started = performance.now();
  const key = `/${BUCKET}/ceiling-mp/model.pt`;
  const created = await client.send('POST', `${key}?uploads`);
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!;
  const parts = Math.ceil(BIG_FILE / partSize);
  const etags: string[] = [];
  let nextPart = 0;
  let nextSmall = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (nextPart < parts) {
        const number = ++nextPart;
        const { etag } = await client.send('PUT', `${key}?partNumber=${number}&uploadId=${uploadId}`, part);
        etags[number - 1] = `<Part><PartNumber>${number}</PartNumber><ETag>${etag}</ETag></Part>`;
      }
      while (nextSmall < SMALL_FILES) await client.send('PUT', `/${BUCKET}/ceiling-mp/shard-${nextSmall++}.pt`, small);
    }),
  );
  await client.send('POST', `${key}?uploadId=${uploadId}`, Buffer.from(`<CompleteMultipartUpload>${etags.join('')}</CompleteMultipartUpload>`));
  client.close();
  return (performance.now() - started) / 1000;
}
