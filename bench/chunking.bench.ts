import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentChunker, SNAPSHOT_CHUNK_SIZES } from '../src/snapshots/chunker.js';
import { snapshotOptionsSchema } from '../src/snapshots/options.js';
import { chunkingThreads, FileReader } from '../src/snapshots/read.js';
import { walkPaths, type FoundFile } from '../src/snapshots/walk.js';
import { snapshotStep } from '../src/steps/snapshot/step.js';
import { testStepContext } from '../test/helpers/step-context.js';
import { flag } from './lib/args.js';
import { ownPeakRssMiB } from './lib/peak-rss.js';

/**
 * Issue 14's CPU goals: chunking plus hashing never bottlenecks sync, >= 1 GB/s over the
 * threads the agent uses; sync as a whole <= 1.5 CPU-s per GB stored. In one run:
 *   1. in memory on this thread: SHA-256 alone, and chunk + SHA-256 of every chunk (what dedup
 *      mode did on the main thread before the reading threads took it over);
 *   2. through the agent's own reading threads (read.ts: read from the page cache, CRC32, cut,
 *      SHA-256 of each chunk), a tree of 8 files of `--mib` / 8 on tmpfs, 4 files at a time
 *      (the default concurrency): on 1 thread, then on as many as dedup mode starts here. The
 *      threads live across rounds: round 1 includes their JIT warm-up (as a snapshot's first
 *      files do: each snapshot starts its own), the later rounds show them warm;
 *   2b. one file of `--mib` through the same threads: read whole on one of them, and in
 *      segments on all of them at once (segmented-read.ts), as a notice-time snapshot reads a
 *      large checkpoint file the sync had not scanned;
 *   3. a dedup snapshot of a `--sync-mib` tree of 8 shards to a file:// repository on tmpfs,
 *      in a child process: its CPU-s per GB stored and its peak RSS, start-up, the file
 *      store's writes and fsyncs included. The sync's own figure, which the goal of 1.5 CPU-s
 *      per GB is about, is `sync-memory`'s: the agent syncing into an S3 API sink.
 *
 * npm run bench -- chunking [--mib 512] [--rounds 3] [--sync-mib 2048]
 */
const MIB = 1024 * 1024;
const GOAL_MBPS = 1000;
const CONCURRENCY = 4;
const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

function chunkAndHash(data: Uint8Array): number {
  const chunker = new ContentChunker(SNAPSHOT_CHUNK_SIZES);
  let chunks = 0;
  const hash = (chunk: Uint8Array) => {
    createHash('sha256').update(chunk).digest();
    chunks += 1;
  };
  // 8 MiB pieces, as a file is read.
  for (let at = 0; at < data.length; at += 8 * MIB) chunker.push(data.subarray(at, Math.min(data.length, at + 8 * MIB)), hash);
  chunker.end(hash);
  return chunks;
}

function timeMs(work: () => void): number {
  const start = performance.now();
  work();
  return performance.now() - start;
}

/** Reads `files` as dedup mode does (chunks cut and hashed on the reading threads), `CONCURRENCY` at a time; the time taken. */
async function readChunked(files: FoundFile[], reader: FileReader): Promise<number> {
  const start = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < files.length) {
      const read = await reader.open(files[next++]!, { exactSize: false, partSize: 8 * MIB, checksum: 'crc32', chunks: true });
      for await (const part of read.parts) part.release?.();
      await read.result();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return performance.now() - start;
}

async function writeRandomFiles(dir: string, count: number, size: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < count; i += 1) await writeFile(join(dir, `shard-${i}.pt`), randomFillSync(bytes));
}

interface SyncFigures {
  seconds: number;
  bytesSent: number;
  cpuSeconds: number;
  /** ownPeakRssMiB (getrusage's maxRSS of this child read 609-811 MB: the bench's RSS at the fork). */
  peakRssMiB: number;
}

/** Runs a dedup snapshot of `ckpt` to `repo` in a child process, so its CPU and RSS are the snapshot's own. */
async function syncInChild(ckpt: string, repo: string): Promise<SyncFigures> {
  const script = 'const [ckpt, repo] = process.argv.slice(1); const bench = await import(process.env.PREEMPTD_BENCH_MODULE); await bench.syncChild(ckpt, repo);';
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ckpt, repo], { env: { ...process.env, PREEMPTD_BENCH_MODULE: import.meta.url }, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (data: Buffer) => (output += data.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`sync child exited with ${code}`);
  return JSON.parse(output.trim().split('\n').pop()!) as SyncFigures;
}

/** Entry point of the child process (not part of the bench API). */
export async function syncChild(ckpt: string, repo: string): Promise<void> {
  const step = testStepContext({ timeoutMs: 600_000 });
  const started = performance.now();
  try {
    const options = snapshotOptionsSchema.parse({ paths: [ckpt], to: `file://${repo}/`, mode: 'dedup', concurrency: CONCURRENCY });
    const detail = (await snapshotStep.run(options, step.context)) as { bytesSent: number };
    const usage = process.resourceUsage();
    const figures: SyncFigures = { seconds: (performance.now() - started) / 1000, bytesSent: detail.bytesSent, cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6, peakRssMiB: ownPeakRssMiB() };
    console.log(JSON.stringify(figures));
  } finally {
    step.dispose();
  }
}

export default async function main(args: string[]): Promise<void> {
  const mib = Number(flag(args, '--mib') ?? 512);
  const rounds = Number(flag(args, '--rounds') ?? 3);
  const syncMib = Number(flag(args, '--sync-mib') ?? 2048);
  const threads = chunkingThreads(CONCURRENCY);
  const dir = await mkdtemp(join(scratch, 'chunking-bench-'));
  try {
    const data = randomFillSync(new Uint8Array(mib * MIB));
    await writeRandomFiles(join(dir, 'tree'), 8, (mib / 8) * MIB);
    const files = (await walkPaths([join(dir, 'tree')], [], new AbortController().signal)).entries as FoundFile[];
    await mkdir(join(dir, 'one'));
    await writeFile(join(dir, 'one/model.pt'), data);
    const one = (await walkPaths([join(dir, 'one')], [], new AbortController().signal)).entries as FoundFile[];
    const rate = (ms: number) => data.length / 1e6 / (ms / 1000);
    // Also the JIT's warm-up: the first pass runs before the scan loop is optimized.
    const chunks = chunkAndHash(data);
    console.log(`${mib} MiB of random bytes; chunk sizes ${JSON.stringify(SNAPSHOT_CHUNK_SIZES)}: ${chunks} chunks, mean ${(data.length / chunks / 1024).toFixed(0)} KiB`);
    console.log(
      `round | sha256 alone, 1 thread | chunk + sha256, 1 thread | reading threads: read + crc32 + chunk + sha256, 1 thread | the same, ${threads} threads | ${threads} threads / goal 1 GB/s` +
        ` | one file on ${threads} threads: whole | in segments | segments / whole`,
    );
    // The last reads a file whole however large: no file is twice an endless segment.
    const readers = [FileReader.start({ threads: 1 }), FileReader.start({ threads }), FileReader.start({ threads, segmentBytes: Infinity })] as const;
    try {
      for (let round = 1; round <= rounds; round += 1) {
        const hashMs = timeMs(() => createHash('sha256').update(data).digest());
        const chunkMs = timeMs(() => chunkAndHash(data));
        const oneThread = rate(await readChunked(files, readers[0]));
        const nThreads = rate(await readChunked(files, readers[1]));
        const whole = rate(await readChunked(one, readers[2]));
        const segmented = rate(await readChunked(one, readers[1]));
        console.log(
          `${round} | ${rate(hashMs).toFixed(0)} MB/s | ${rate(chunkMs).toFixed(0)} MB/s | ${oneThread.toFixed(0)} MB/s | ${nThreads.toFixed(0)} MB/s | ${(nThreads / GOAL_MBPS).toFixed(2)}` +
            ` | ${whole.toFixed(0)} MB/s | ${segmented.toFixed(0)} MB/s | ${(segmented / whole).toFixed(2)}`,
        );
      }
    } finally {
      await Promise.all(readers.map((reader) => reader.close()));
    }
    await rm(join(dir, 'tree'), { recursive: true });
    await rm(join(dir, 'one'), { recursive: true });

    await writeRandomFiles(join(dir, 'ckpt'), 8, (syncMib / 8) * MIB);
    const sync = await syncInChild(join(dir, 'ckpt'), join(dir, 'repo'));
    const gb = sync.bytesSent / 1e9;
    console.log(
      `dedup snapshot of ${syncMib} MiB (8 shards) to file:// on ${scratch}, in a child process: ${(sync.bytesSent / 1e6 / sync.seconds).toFixed(0)} MB/s (${sync.seconds.toFixed(2)} s), ` +
        `${(sync.cpuSeconds / gb).toFixed(2)} CPU-s per GB stored, peak RSS ${sync.peakRssMiB.toFixed(0)} MiB (the sync's CPU goal, 1.5, is measured by sync-memory)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
