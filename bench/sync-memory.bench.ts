import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startSimulator } from '../src/simulator/metadata-server.js';
import { spawnAgent, stopChildren } from './lib/agent-process.js';
import { flag } from './lib/args.js';
import { startDiscardSink } from './lib/discard-sink.js';
import { processCpuSeconds } from './lib/stats.js';

/**
 * Issue 14's memory and CPU goals for the background sync, on the real agent: `preemptd run`
 * (the built CLI) with a `sync:` of a tree of `--mib` MiB (half one model file, the rest 8
 * shards) into the S3 API discard sink on loopback, until its first commit. Read from
 * /proc of the agent: its peak RSS (VmHWM; goal <= 300 MB on a 10 GiB tree) and its CPU-s
 * per GB stored (goal <= 1.5), with the sink's bytes and the wall time.
 *
 * npm run bench -- sync-memory [--mib 2048] [--cap 200MB/s] [--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 */
const MIB = 1024 * 1024;

export default async function main(args: string[]): Promise<void> {
  const mib = Number(flag(args, '--mib') ?? 2048);
  const cap = flag(args, '--cap');
  const nodeArgs = flag(args, '--node-args')?.split(' ');
  const dir = await mkdtemp(join(tmpdir(), 'sync-memory-'));
  const sink = await startDiscardSink();
  const simulator = await startSimulator({ provider: 'aws' });
  try {
    const tree = join(dir, 'ckpt');
    await mkdir(tree);
    const block = Buffer.alloc(64 * MIB);
    const write = async (name: string, bytes: number) => {
      const file = await open(join(tree, name), 'w');
      try {
        for (let done = 0; done < bytes; done += block.length) await file.write(randomFillSync(block), 0, Math.min(block.length, bytes - done));
      } finally {
        await file.close();
      }
    };
    await write('model.pt', (mib / 2) * MIB);
    for (let index = 0; index < 8; index += 1) await write(`shard-${index}.pt`, (mib / 16) * MIB);
    const agent = spawnAgent(dir, {
      metadataUrl: simulator.url,
      ...(nodeArgs ? { nodeArgs } : {}),
      settings: [
        'pollInterval: 1s',
        'sync:',
        '  ckpt:',
        `    paths: [${tree}]`,
        '    to: s3://bench/sync/',
        `    endpoint: ${sink.endpoint}`,
        '    forcePathStyle: true',
        '    region: us-east-1',
        '    settle: 1s',
        ...(cap ? [`    bandwidth: ${cap}`] : []),
      ],
      runArgs: ['--log-level', 'info'],
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_EC2_METADATA_DISABLED: 'true' },
    });
    const started = performance.now();
    const cpuAtStart = processCpuSeconds(agent.pid!);
    const lines = createInterface({ input: agent.stdout! });
    const committed = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => line.includes('sync committed a snapshot') && resolve());
      agent.once('exit', (code) => reject(new Error(`the agent exited (${String(code)}) before its sync committed`)));
    });
    await committed;
    const seconds = (performance.now() - started) / 1000;
    const cpu = processCpuSeconds(agent.pid!) - cpuAtStart;
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.pid!}/status`, 'utf8'))![1]) / 1024;
    const exited = once(agent, 'exit');
    await stopChildren(agent);
    await exited.catch(() => undefined);
    const gb = sink.bytes() / 1e9;
    console.log(`tree ${mib} MiB, cap ${cap ?? 'none'}, load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}`);
    console.log(`the agent's sync stored ${(sink.bytes() / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s (from the agent's start to its first commit)`);
    console.log(`peak RSS ${peak.toFixed(0)} MiB (goal <= 300 MB); ${cpu.toFixed(2)} CPU-s, ${(cpu / gb).toFixed(2)} CPU-s per GB stored (goal <= 1.5)`);
  } finally {
    await simulator.close();
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  }
}
