import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncEntrySchema } from '../src/config/sync-schema.js';
import { hostFacts } from '../src/lib/host.js';
import { silentLogger } from '../src/lib/log.js';
import { snapshotOptionsSchema } from '../src/snapshots/options.js';
import { SyncEngine } from '../src/snapshots/sync/engine.js';
import { registerSync } from '../src/snapshots/sync/registry.js';
import { snapshotStep } from '../src/steps/snapshot/step.js';
import { testStepContext } from '../test/helpers/step-context.js';
import { flag } from './lib/args.js';
import { ownPeakRssMiB } from './lib/peak-rss.js';
import { startDiscardSink, type DiscardSink } from './lib/discard-sink.js';

/**
 * Issue 14's notice-time delta, scaled (`--size` MiB, default 512): a checkpoint tree that a
 * background sync has stored, then 5 % of it changes (a new file of 2.5 %, and 1 MiB regions
 * rewritten across the large file, one of them an insertion that shifts the rest). In one
 * run, into the S3 API discard sink on loopback (which counts the bytes it receives):
 * - today's full snapshot of the changed tree (files mode);
 * - "before": the notice-time snapshot tied to a sync that had not looked since the change;
 * - "after": the same with a sync (its own repository) that kept running under `--cap`
 *   (default 20MB/s; a unit is required) until its status showed the changed files scanned:
 *   the notice sends only what the scan still owed.
 * Goals: the delta sends <= 1.2 x the changed bytes; it takes <= 2 s + changed bytes / the
 * full snapshot's rate, and <= 0.15 x the full snapshot's time.
 *
 * npm run bench -- sync-delta [--size 512] [--cap 20MB/s]
 */
const MIB = 1024 * 1024;

async function timedSnapshot(raw: Record<string, unknown>, sink: DiscardSink): Promise<{ seconds: number; sent: number; detail: Record<string, unknown> }> {
  const step = testStepContext({ timeoutMs: 600_000 });
  const before = sink.bytes();
  const started = performance.now();
  try {
    const detail = (await snapshotStep.run(snapshotOptionsSchema.parse(raw), step.context)) as Record<string, unknown>;
    return { seconds: (performance.now() - started) / 1000, sent: sink.bytes() - before, detail };
  } finally {
    step.dispose();
  }
}

/** Polls `done` every 50 ms. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** Random bytes in 64 MiB writes (one buffer of a 10 GiB tree's half is past what randomFill takes). */
async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const file = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const block = randomFillSync(Buffer.alloc(Math.min(64 * MIB, bytes - done)));
      await file.write(block, 0, block.length, done);
      done += block.length;
    }
  } finally {
    await file.close();
  }
}

/** Inserts `bytes` at `at` of a file `length` long, moving the rest up block by block from the end. */
async function insertAt(file: FileHandle, at: number, length: number, bytes: Buffer): Promise<void> {
  const block = Buffer.alloc(64 * MIB);
  for (let end = length; end > at; ) {
    const start = Math.max(at, end - block.length);
    const { bytesRead } = await file.read(block, 0, end - start, start);
    await file.write(block, 0, bytesRead, start + bytes.length);
    end = start;
  }
  await file.write(bytes, 0, bytes.length, at);
}

export default async function main(args: string[]): Promise<void> {
  const size = Number(flag(args, '--size') ?? 512) * MIB;
  const cap = flag(args, '--cap') ?? '20MB/s';
  const dir = await mkdtemp(join(tmpdir(), 'sync-delta-'));
  const sink = await startDiscardSink();
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_EC2_METADATA_DISABLED: 'true' });
  const store = { endpoint: sink.endpoint, forcePathStyle: true, region: 'us-east-1' };
  const storeStop = new AbortController();
  let before: SyncEngine | undefined;
  let after: SyncEngine | undefined;
  try {
    // Half the tree one large file (a model), the rest 8 shards.
    const tree = join(dir, 'ckpt');
    await mkdir(tree);
    const model = join(tree, 'model.pt');
    await writeRandomFile(model, size / 2);
    for (let index = 0; index < 8; index += 1) await writeRandomFile(join(tree, `shard-${index}.pt`), size / 16);

    // Two syncs store the tree: `before` (no cap) stops looking, so its notice sends the whole
    // change; `after` (capped; the cap lifted for its first store) looks again after the change.
    const entry = (extra: Record<string, unknown>) => syncEntrySchema.parse({ paths: [tree], settle: '1s', ...store, ...extra });
    const startSync = (name: string, extra: Record<string, unknown>) =>
      SyncEngine.open(name, entry({ to: `s3://bench/${name}/`, ...extra }), { stateDir: join(dir, 'state'), host: hostFacts(), log: silentLogger(), signal: storeStop.signal });
    before = await startSync('before', {});
    after = await startSync('after', { bandwidth: cap });
    const unregister = [registerSync(before), registerSync(after)];
    const syncStarted = performance.now();
    const looking = new AbortController();
    const running = [before.run(looking.signal), after.run(looking.signal)];
    after.flush();
    // Every file stored (the notice knows its chunks from the sync's record) and a commit made.
    // A first commit alone may hold only part of the tree: once, "before" then sent 3.3 GB.
    const synced = (sync: SyncEngine) => sync.status().lastCommitAt !== null && sync.status().backlogFiles === 0;
    await until(() => synced(before!) && synced(after!));
    const syncSeconds = (performance.now() - syncStarted) / 1000;
    const syncPeakMiB = ownPeakRssMiB();
    looking.abort();
    await Promise.all(running);

    // 5 % changes: a new file of 2.5 %, and 2.5 % as 1 MiB regions in model.pt, the first an insertion.
    const added = Math.floor(size / 40);
    await writeRandomFile(join(tree, 'optimizer-new.pt'), added);
    const regions = Math.max(2, Math.round(size / 40 / MIB));
    const file = await open(model, 'r+');
    try {
      const length = (await file.stat()).size;
      for (let index = 1; index < regions; index += 1) await file.write(randomFillSync(Buffer.alloc(MIB)), 0, MIB, Math.floor((length * index) / regions));
      await insertAt(file, Math.floor(length / (2 * regions)), length, randomFillSync(Buffer.alloc(MIB)));
    } finally {
      await file.close();
    }
    const changed = added + regions * MIB;

    const full = await timedSnapshot({ paths: [tree], to: 's3://bench/full/', mode: 'files', ...store }, sink);
    const early = await timedSnapshot({ sync: 'before' }, sink);

    // `after` looks again, capped, until every file it has not stored is scanned (a plan each).
    const resumed = new AbortController();
    const sinkAtResume = sink.bytes();
    const readAtResume = after.status().bytesRead;
    const scanStarted = performance.now();
    const resuming = after.run(resumed.signal);
    await until(() => {
      const status = after!.status();
      return status.lastError === null && status.bytesRead > readAtResume && status.scannedFiles === status.backlogFiles;
    });
    const scanSeconds = (performance.now() - scanStarted) / 1000;
    const scanned = after.status();
    const background = sink.bytes() - sinkAtResume;
    const late = await timedSnapshot({ sync: 'after' }, sink);
    resumed.abort();
    await resuming;
    for (const done of unregister) done();

    const fullRate = full.sent / full.seconds;
    const load = loadavg().map((value) => value.toFixed(2)).join(' ');
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    console.log(`tree ${mb(size)} (model.pt + 8 shards), changed ${mb(changed)} (${((100 * changed) / size).toFixed(1)} %), cap ${cap}, load average ${load}`);
    console.log(`background sync of the tree (two syncs at once): ${syncSeconds.toFixed(2)} s, this process's peak RSS by then ${syncPeakMiB.toFixed(0)} MiB (goal for a sync <= 300 MB)`);
    console.log(`full snapshot (files mode): ${full.seconds.toFixed(2)} s, ${mb(full.sent)} at the sink, ${(fullRate / 1e6).toFixed(0)} MB/s`);
    console.log(`"after" scanned the change in ${scanSeconds.toFixed(2)} s: ${scanned.scannedFiles} files, ${mb(scanned.owedBytes)} owed, ${mb(background)} sent at the cap`);
    console.log(`goal bound: 2 s + changed / full rate = ${(2 + changed / fullRate).toFixed(2)} s`);
    console.log(`this process's peak RSS at the end (two syncs, the full snapshot, the notices, 64 MiB write buffers): ${ownPeakRssMiB().toFixed(0)} MiB`);
    for (const [name, delta, sentBefore] of [['before (sync had not seen the change)', early, 0], ['after (sync had scanned it)', late, background]] as const) {
      console.log(
        `notice ${name}: ${delta.seconds.toFixed(2)} s, ${mb(delta.sent)} at the sink, ${mb(sentBefore)} sent by the background, ` +
          `read ${mb(Number(delta.detail.bytesRead))}, complete ${String(delta.detail.complete)}; ` +
          `sent / changed ${((delta.sent + sentBefore) / changed).toFixed(3)} (goal <= 1.2), delta / full time ${(delta.seconds / full.seconds).toFixed(3)} (goal <= 0.15)`,
      );
    }
  } finally {
    await Promise.all([before?.close(), after?.close()]);
    storeStop.abort();
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  }
}
