import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/lib/log.js';
import { snapshotOptionsSchema } from '../src/snapshots/options.js';
import { restore } from '../src/snapshots/restore.js';
import { snapshotStep } from '../src/steps/snapshot/step.js';
import { testStepContext } from '../test/helpers/step-context.js';
import { flag } from './lib/args.js';

/**
 * Issue 14's dedupe goal: a second checkpoint sharing 90 % of its content with the first,
 * with an insertion that shifts the rest of a file, stores <= 15 % of its size. Both go to a
 * file:// dedup repository; `bytesSent` is what reached the store. Then restore --latest of
 * the second, cold and warm.
 *
 * The first checkpoint: model.pt (half the size) and 4 shards. The second: 1 MiB inserted
 * into model.pt at a third of it, 8 scattered 1 MiB regions rewritten in place, and the last
 * shard's first 5/8 replaced; about 10 % new content.
 *
 * npm run bench -- dedup [--mib 512]
 */
const MIB = 1024 * 1024;

async function snapshot(paths: string[], repo: string): Promise<{ seconds: number; bytesDone: number; bytesSent: number }> {
  const step = testStepContext({ timeoutMs: 600_000 });
  const started = performance.now();
  try {
    const detail = (await snapshotStep.run(snapshotOptionsSchema.parse({ paths, to: `file://${repo}/`, mode: 'dedup' }), step.context)) as { bytesDone: number; bytesSent: number };
    return { seconds: (performance.now() - started) / 1000, bytesDone: detail.bytesDone, bytesSent: detail.bytesSent };
  } finally {
    step.dispose();
  }
}

export default async function main(args: string[]): Promise<void> {
  const mib = Number(flag(args, '--mib') ?? 512);
  const dir = await mkdtemp(join(tmpdir(), 'dedup-bench-'));
  try {
    const ckpt = join(dir, 'ckpt');
    const repo = join(dir, 'repo');
    await mkdir(ckpt);
    const model = randomBytes((mib / 2) * MIB);
    const shardSize = (mib / 8) * MIB;
    await writeFile(join(ckpt, 'model.pt'), model);
    for (let shard = 0; shard < 4; shard += 1) await writeFile(join(ckpt, `shard-${shard}.pt`), randomBytes(shardSize));
    const first = await snapshot([ckpt], repo);

    const at = Math.floor(model.length / 3);
    const grown = Buffer.concat([model.subarray(0, at), randomBytes(MIB), model.subarray(at)]);
    for (let region = 0; region < 8; region += 1) randomBytes(MIB).copy(grown, Math.floor(((region + 0.5) * grown.length) / 8));
    await writeFile(join(ckpt, 'model.pt'), grown);
    const last = await readFile(join(ckpt, 'shard-3.pt'));
    randomBytes(Math.floor((shardSize * 5) / 8)).copy(last, 0);
    await writeFile(join(ckpt, 'shard-3.pt'), last);
    const changed = MIB + 8 * MIB + Math.floor((shardSize * 5) / 8);
    const second = await snapshot([ckpt], repo);

    const out = join(dir, 'out');
    const restoreOnce = async () => {
      const started = performance.now();
      const result = await restore({ from: `file://${repo}/`, latest: true, to: out, log: silentLogger(), signal: new AbortController().signal });
      return { seconds: (performance.now() - started) / 1000, present: result.present, files: result.files };
    };
    const cold = await restoreOnce();
    const warm = await restoreOnce();

    const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;
    const mbs = (bytes: number, seconds: number) => `${(bytes / 1e6 / seconds).toFixed(0)} MB/s`;
    console.log(`first checkpoint: ${(first.bytesDone / MIB).toFixed(0)} MiB in ${first.seconds.toFixed(2)} s (${mbs(first.bytesDone, first.seconds)}), sent ${(first.bytesSent / MIB).toFixed(1)} MiB`);
    console.log(`second checkpoint: ${(second.bytesDone / MIB).toFixed(0)} MiB, ${pct(changed, second.bytesDone)} new content; ` + `sent ${(second.bytesSent / MIB).toFixed(1)} MiB = ${pct(second.bytesSent, second.bytesDone)} of its size (goal <= 15 %), ${(second.bytesSent / changed).toFixed(2)}x the new content, in ${second.seconds.toFixed(2)} s`);
    console.log(`restore --latest: cold ${cold.seconds.toFixed(2)} s (${mbs(second.bytesDone, cold.seconds)}); warm ${warm.seconds.toFixed(2)} s, ${warm.present} of ${warm.files} files already in place`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
