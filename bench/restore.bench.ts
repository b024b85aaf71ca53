import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { snapshotOptionsSchema } from '../src/snapshots/options.js';
import { snapshotStep } from '../src/steps/snapshot/step.js';
import { S3_CREDENTIALS } from '../test/helpers/s3-server.js';
import { testStepContext } from '../test/helpers/step-context.js';
import { flag } from './lib/args.js';

/**
 * Issue 14's restore goals, side by side in one run. A dedup snapshot of 2 GiB (one 1 GiB
 * file, 100 files of 10.24 MiB; fresh random bytes, so every chunk is distinct) is stored on
 * an S3 API server on loopback that keeps objects in memory and serves them (bench/lib's
 * discard sink with `keep`, in its own process). Then, each in its own process and into
 * the same kind of directory (tmpfs when there is one, so no disk is the limit):
 *   1. `preemptd restore --latest` (the built CLI, `--json`): every chunk's SHA-256 and every
 *      file's checksum verified, files assembled under temporary names and renamed;
 *   2. `aws s3 cp --recursive` of the repository's packs/ (the same bytes: every chunk, once);
 *   3. `rclone copy` of packs/ (it checks each object's MD5 against its ETag);
 * with the ratios. Right after the restore, a warm restore with 90 % of the bytes already in
 * place (10 % of the files removed): bytes fetched / total. Wall time, CPU and peak RSS of each client come
 * from /usr/bin/time. The load average is printed: the machine is shared.
 *
 * npm run bench -- restore [--gib 2] [--rounds 1] [--concurrency 4] [--out DIR] [--no-awscli] [--no-rclone]
 */
const MIB = 1024 * 1024;
const BUCKET = 'bench';
const SHARDS = 100;
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const TIME = '/usr/bin/time';
const RCLONE = '/usr/bin/rclone';

interface Run {
  seconds: number;
  cpuSeconds: number;
  maxRssMb: number;
  stdout: string;
}

export default async function main(args: string[]): Promise<void> {
  const gib = Number(flag(args, '--gib') ?? 2);
  const rounds = Number(flag(args, '--rounds') ?? 1);
  const concurrency = flag(args, '--concurrency');
  const outBase = flag(args, '--out') ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const dir = await mkdtemp(join(tmpdir(), 'restore-bench-'));
  const out = await mkdtemp(join(outBase, 'restore-bench-out-'));
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };
  Object.assign(process.env, env);
  const sink = await startSinkProcess();
  try {
    // Written where the clients write, so the first client too starts right after its bytes were freed there (see the round).
    const total = await writeCheckpoint(join(out, 'ckpt'), gib);
    await snapshotInto(sink.endpoint, join(out, 'ckpt'));
    await rm(join(out, 'ckpt'), { recursive: true });
    console.log(`data: ${(total / 2 ** 30).toFixed(2)} GiB in ${SHARDS + 1} files, as a dedup snapshot on ${sink.endpoint}; restoring into ${outBase}; load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`);

    const awsCli = args.includes('--no-awscli') ? undefined : await which('aws');
    if (!awsCli) console.log(`aws s3 cp: skipped (${args.includes('--no-awscli') ? '--no-awscli' : 'no aws on PATH'})`);
    const rclone = args.includes('--no-rclone') ? undefined : existsSync(RCLONE) ? RCLONE : undefined;
    if (!rclone) console.log(`rclone copy: skipped (${args.includes('--no-rclone') ? '--no-rclone' : `${RCLONE} is not installed (apt-get install rclone)`})`);

    const s3 = ['--endpoint', sink.endpoint, '--force-path-style', '--region', 'us-east-1'];
    const restoreArgs = (to: string) => [process.execPath, CLI, 'restore', '--latest', `s3://${BUCKET}/repo/`, '--to', to, ...s3, '--json', ...(concurrency ? ['--concurrency', concurrency] : [])];
    /*
     * Each client starts right after the previous one's output (as many bytes) was removed from
     * the output filesystem. Which client came after such a removal decided the ratios: on tmpfs
     * here, rclone right after restore (whose output stayed for the warm restore) took 3.6-4.5
     * CPU-s per GB at 390-470 MB/s, and 2.6-2.7 CPU-s per GB at 620-640 MB/s once 2 GiB had been
     * written and removed there just before it.
     */
    for (let round = 1; round <= rounds; round += 1) {
      const line = (name: string, run: Run, bytes: number) =>
        console.log(`round ${round} ${name.padEnd(26)} ${mb(bytes / run.seconds)} MB/s (${run.seconds.toFixed(2)} s), ${(run.cpuSeconds / (bytes / 1e9)).toFixed(2)} CPU-s/GB, peak RSS ${run.maxRssMb.toFixed(0)} MB`);
      const to = join(out, 'restore');
      const restored = await timed(restoreArgs(to), env);
      const summary = lastEvent(restored.stdout);
      if (!summary.ok || summary.bytesFetched !== total) throw new Error(`restore did not fetch ${total} bytes: ${JSON.stringify(summary)}`);
      line('preemptd restore --latest', restored, total);

      // Warm: 10 % of the bytes removed (20 of the 100 files of 10.24 MiB), the rest in place.
      const shards = (await readdir(join(to, 'ckpt/shards'))).sort();
      for (const name of shards.filter((_, index) => index % 5 === 0)) await rm(join(to, 'ckpt/shards', name));
      const warm = await timed(restoreArgs(to), env);
      const again = lastEvent(warm.stdout);
      console.log(
        `round ${round} warm restore, 90 % present: ${(warm.seconds).toFixed(2)} s, fetched ${mb(again.bytesFetched)} MB of ${mb(again.bytesTotal)} MB = ` +
          `${((100 * again.bytesFetched) / again.bytesTotal).toFixed(1)} % (goal <= 12 %), ${again.filesPresent} of ${again.filesTotal} files left in place`,
      );
      await rm(to, { recursive: true });

      const figures: string[] = [];
      if (awsCli) {
        const to2 = join(out, 'aws');
        const config = join(dir, 'aws-config');
        await writeFile(config, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
        const run = await timed([awsCli, 's3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', sink.endpoint, `s3://${BUCKET}/repo/packs/`, to2], { ...env, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: '/dev/null' });
        await expectBytes(to2, total, 'aws s3 cp');
        line('aws s3 cp --recursive', run, total);
        figures.push(`${(run.seconds / restored.seconds).toFixed(2)}x aws s3 cp`);
        await rm(to2, { recursive: true });
      }
      if (rclone) {
        const to3 = join(out, 'rclone');
        const remote = ['--s3-provider', 'Other', '--s3-endpoint', sink.endpoint, '--s3-access-key-id', S3_CREDENTIALS.accessKeyId, '--s3-secret-access-key', S3_CREDENTIALS.secretAccessKey, '--s3-force-path-style', '--s3-region', 'us-east-1'];
        // rclone's SDK refuses AWS_CA_BUNDLE on a custom transport; a loopback http endpoint needs none.
        const { AWS_CA_BUNDLE: _bundle, ...rcloneEnv } = env;
        const run = await timed([rclone, 'copy', ...remote, `:s3:${BUCKET}/repo/packs`, to3], rcloneEnv);
        await expectBytes(to3, total, 'rclone copy');
        line('rclone copy', run, total);
        figures.push(`${(run.seconds / restored.seconds).toFixed(2)}x rclone copy`);
        await rm(to3, { recursive: true });
      }
      if (figures.length) console.log(`round ${round} restore --latest is ${figures.join(', ')} (goal >= 2x aws, >= 1.5x rclone)`);
      console.log(`round ${round} load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`);
    }
  } finally {
    sink.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  }
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

function lastEvent(stdout: string): { ok: boolean; bytesFetched: number; bytesTotal: number; filesPresent: number; filesTotal: number } {
  return JSON.parse(stdout.trim().split('\n').filter((line) => line.startsWith('{"event"')).pop() ?? '{}') as ReturnType<typeof lastEvent>;
}

/**
 * One 1 GiB file (per 2 GiB) and 100 files making the other half, all fresh random bytes: no
 * chunk repeats, so the repository's packs hold exactly the bytes restore fetches.
 */
async function writeCheckpoint(dir: string, gib: number): Promise<number> {
  const write = async (path: string, size: number) => {
    const handle = await open(path, 'w');
    try {
      for (let written = 0; written < size; written += 64 * MIB) await handle.write(randomBytes(Math.min(64 * MIB, size - written)));
    } finally {
      await handle.close();
    }
  };
  const half = (gib * 1024 * MIB) / 2;
  await mkdir(join(dir, 'shards'), { recursive: true });
  await write(join(dir, 'model.pt'), half);
  const shard = Math.floor(half / SHARDS);
  for (let i = 0; i < SHARDS; i++) await write(join(dir, `shards/shard-${String(i).padStart(3, '0')}.pt`), shard);
  return half + SHARDS * shard;
}

async function snapshotInto(endpoint: string, ckpt: string): Promise<void> {
  const step = testStepContext({ timeoutMs: 600_000 });
  try {
    const options = snapshotOptionsSchema.parse({ paths: [ckpt], to: `s3://${BUCKET}/repo/`, mode: 'dedup', endpoint, forcePathStyle: true, region: 'us-east-1' });
    const detail = (await snapshotStep.run(options, step.context)) as { complete: boolean };
    if (!detail.complete) throw new Error(`the snapshot is incomplete: ${JSON.stringify(detail)}`);
  } finally {
    step.dispose();
  }
}

async function expectBytes(dir: string, total: number, who: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  let bytes = 0;
  for (const entry of entries) if (entry.isFile()) bytes += (await stat(join(entry.parentPath, entry.name))).size;
  if (bytes !== total) throw new Error(`${who} fetched ${bytes} bytes, expected ${total}`);
}

async function which(name: string): Promise<string | undefined> {
  for (const folder of (process.env.PATH ?? '').split(':')) if (folder && existsSync(join(folder, name))) return join(folder, name);
  return undefined;
}

/** Runs `command` under /usr/bin/time: wall time here, user + system CPU and peak RSS from time. */
async function timed(command: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const report = join(tmpdir(), `restore-bench-time-${process.pid}`);
  const started = performance.now();
  const child = spawn(TIME, ['-o', report, '-f', '%U %S %M', ...command], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${command.join(' ')} exited with ${code}\n${stdout}`);
  const [user = 0, system = 0, rssKiB = 0] = (await readFile(report, 'utf8')).trim().split('\n').pop()!.split(/\s+/).map(Number);
  await rm(report, { force: true });
  return { seconds, cpuSeconds: user + system, maxRssMb: (rssKiB * 1024) / 1e6, stdout };
}

/** The sink in its own process, so it never shares an event loop with a client measured. */
async function startSinkProcess(): Promise<{ endpoint: string; stop(): void }> {
  const script = 'const { startDiscardSink } = await import(process.argv[1]); const sink = await startDiscardSink({ keep: true }); console.log(sink.endpoint); process.on("SIGTERM", () => sink.close().then(() => process.exit(0)));';
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, new URL('./lib/discard-sink.js', import.meta.url).href], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return { endpoint: line, stop: () => child.kill('SIGTERM') };
}
