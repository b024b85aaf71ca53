import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { syncEntrySchema } from '../src/config/sync-schema.js';
import { hostFacts } from '../src/lib/host.js';
import { silentLogger } from '../src/lib/log.js';
import { SyncEngine } from '../src/snapshots/sync/engine.js';
import { flag } from './lib/args.js';
import { startDiscardSink } from './lib/discard-sink.js';

/**
 * The background sync's bandwidth cap (issue 14, "Cap"): a real SyncEngine stores a tree of
 * incompressible files into an S3 API sink on loopback that counts the bytes it receives;
 * the sink is sampled every 100 ms and every 10 s window from the first byte on is compared
 * with the cap. Goal: within ±10 % over any 10 s window. Prints the worst windows.
 *
 * npm run bench -- sync-cap [--cap 10MB/s] [--seconds 40] [--mib 512]
 */
export default async function main(args: string[]): Promise<void> {
  const cap = flag(args, '--cap') ?? '10MB/s';
  const seconds = Number(flag(args, '--seconds') ?? 40);
  const mib = Number(flag(args, '--mib') ?? 512);
  const dir = await mkdtemp(join(tmpdir(), 'sync-cap-'));
  const sink = await startDiscardSink();
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_EC2_METADATA_DISABLED: 'true' });
  try {
    const tree = join(dir, 'ckpt');
    await mkdir(tree);
    const fileMib = 32;
    const piece = Buffer.alloc(fileMib << 20);
    for (let index = 0; index < Math.ceil(mib / fileMib); index += 1) await writeFile(join(tree, `shard-${index}.pt`), randomFillSync(piece));
    const entry = syncEntrySchema.parse({ paths: [tree], to: 's3://bench/sync/', settle: 0, bandwidth: cap, endpoint: sink.endpoint, forcePathStyle: true, region: 'us-east-1' });
    const stop = new AbortController();
    const engine = await SyncEngine.open('bench', entry, { stateDir: join(dir, 'state'), host: hostFacts(), log: silentLogger(), signal: stop.signal });
    const samples: { at: number; bytes: number }[] = [];
    const running = engine.run(stop.signal);
    const started = performance.now();
    while (performance.now() - started < seconds * 1000 && engine.status().lastCommitAt === null) {
      samples.push({ at: performance.now(), bytes: sink.bytes() });
      await sleep(100);
    }
    stop.abort();
    await running;
    await engine.close();

    const rate = entry.bytesPerSecond!;
    const first = samples.findIndex((sample) => sample.bytes > 0);
    const windows: number[] = [];
    for (let i = Math.max(0, first - 1); i < samples.length; i += 1) {
      const end = samples.findIndex((sample) => sample.at >= samples[i]!.at + 10_000);
      if (end === -1) break;
      const span = (samples[end]!.at - samples[i]!.at) / 1000;
      windows.push((samples[end]!.bytes - samples[i]!.bytes) / (rate * span));
    }
    const load = loadavg().map((value) => value.toFixed(2)).join(' ');
    console.log(`sync cap ${cap} (${(rate / 1e6).toFixed(1)} MB/s), ${samples.length} samples over ${((samples.at(-1)!.at - started) / 1000).toFixed(1)} s, load average ${load}`);
    if (windows.length === 0) {
      console.log('not enough data for one 10 s window: raise --mib or --seconds');
      return;
    }
    const lowest = Math.min(...windows);
    const highest = Math.max(...windows);
    const worst = Math.max(1 - lowest, highest - 1);
    console.log(`10 s windows: ${windows.length}; sent/cap lowest ${lowest.toFixed(3)}, highest ${highest.toFixed(3)}; worst ${(100 * worst).toFixed(1)} % off the cap (goal <= 10 %)`);
  } finally {
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  }
}
