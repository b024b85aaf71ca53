import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { ConfigError } from '../../src/lib/errors.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { CHUNK_REUSE_WINDOW_MS } from '../../src/snapshots/repository.js';
import { FileReader } from '../../src/snapshots/read.js';
import { ScanPlans } from '../../src/snapshots/sync/plans.js';
import { TokenBucket } from '../../src/snapshots/sync/token-bucket.js';
import { walkPaths, type FoundFile } from '../../src/snapshots/walk.js';
import { compileConfig } from '../helpers/config.js';

const base = { metadataUrl: 'http://127.0.0.1:9/' };

/** The messages compiling `raw` gives, as `path: message`. */
function issues(raw: Record<string, unknown>): string[] {
  try {
    compileConfig({ ...base, ...raw }, { file: 'preemptd.yaml' });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
}

const entry = { paths: ['/data/ckpt'], to: 's3://bucket/ckpt/' };

describe('the sync: section', () => {
  test('compiles settle, interval and the bandwidth cap with its unit', () => {
    const config = compileConfig({ ...base, sync: { ckpt: { ...entry, bandwidth: '400Mbit/s', interval: '5m' }, logs: { ...entry, marker: '/data/ckpt/*/COMPLETE', bandwidth: '20MiB/s' } } });
    expect(config.sync.ckpt).toMatchObject({ paths: ['/data/ckpt'], settleMs: 2000, marker: null, intervalMs: 300_000, bytesPerSecond: 50e6 });
    expect(config.sync.logs).toMatchObject({ settleMs: 0, marker: ['/data/ckpt/*/COMPLETE'], intervalMs: null, bytesPerSecond: 20 * 1024 * 1024 });
  });

  test('refuses a bandwidth without a unit, saying why', () => {
    expect(issues({ sync: { ckpt: { ...entry, bandwidth: 50 } } })).toEqual([
      'sync.ckpt.bandwidth: got 50: a bare number is ambiguous (bytes or bits?): expected a rate with its unit such as 50MB/s, 20MiB/s or 400Mbit/s',
    ]);
    expect(issues({ sync: { ckpt: { ...entry, bandwidth: '50MB' } } })).toEqual(['sync.ckpt.bandwidth: got "50MB": expected a rate with its unit such as 50MB/s, 20MiB/s or 400Mbit/s']);
    // Bits or bytes? A lower-case b says either, depending on who wrote it.
    expect(issues({ sync: { ckpt: { ...entry, bandwidth: '50Mb/s' } } })).toEqual(['sync.ckpt.bandwidth: got "50Mb/s": expected a rate with its unit such as 50MB/s, 20MiB/s or 400Mbit/s']);
    const rate = (bandwidth: string) => compileConfig({ ...base, sync: { ckpt: { ...entry, bandwidth } } }).sync.ckpt!.bytesPerSecond;
    expect([rate('1GiB/s'), rate('8kbit/s'), rate(' 2.5 MB/s ')]).toEqual([1024 ** 3, 1000, 2.5e6]);
  });

  test('retention: off by default; keepLast and/or keepWithin, a grace of 2h or more (the prune default when not given)', () => {
    const retention = (value: unknown) => compileConfig({ ...base, sync: { ckpt: { ...entry, retention: value } } }).sync.ckpt!.retention;
    expect(compileConfig({ ...base, sync: { ckpt: entry } }).sync.ckpt!.retention).toBeNull();
    expect(retention({ keepLast: 3 })).toEqual({ keepLast: 3, keepWithinMs: undefined, graceMs: undefined });
    expect(retention({ keepWithin: '36h', grace: '6h' })).toEqual({ keepLast: undefined, keepWithinMs: 36 * 3_600_000, graceMs: 6 * 3_600_000 });
    expect(issues({ sync: { ckpt: { ...entry, retention: { keepLast: 3, grace: '30m' } } } })).toEqual([
      'sync.ckpt.retention.grace: got "30m0s": expected 2h or more: a shorter grace may delete chunks a commit running now relies on',
    ]);
    expect(issues({ sync: { ckpt: { ...entry, retention: { grace: '24h' } } } })).toEqual(['sync.ckpt.retention: expected a policy: keepLast and/or keepWithin (e.g. keepLast: 3)']);
    expect(issues({ sync: { ckpt: { ...entry, retention: { keepLast: -1, keepWithin: 7 } } } })).toEqual([
      'sync.ckpt.retention.keepLast: expected a whole number of snapshots, 0 or more',
      expect.stringMatching(/^sync\.ckpt\.retention\.keepWithin: got 7/),
    ]);
  });

  test('refuses relative paths, unknown destinations and placeholders a sync cannot fill', () => {
    expect(issues({ sync: { ckpt: { paths: ['ckpt'], to: 'ftp://x/', settle: 'soon' } } })).toEqual([
      'sync.ckpt.paths[0]: got "ckpt": expected an absolute path or glob (starting with /)',
      'sync.ckpt.to: got "ftp://x/": expected s3://, gs://, az:// or file:// and a prefix',
      expect.stringMatching(/^sync\.ckpt\.settle: got "soon"/),
    ]);
    expect(issues({ sync: { ckpt: { ...entry, to: 's3://bucket/{instanceId}/' } } })).toEqual([
      'sync.ckpt.to: got {instanceId}: a sync runs before any notice, so only {hostname} can be filled in',
    ]);
  });

  test('a snapshot step names a configured sync, and takes its paths and destination from it', () => {
    const step = (snapshot: Record<string, unknown>) => ({ steps: [{ name: 'save', snapshot }] });
    expect(issues({ sync: { ckpt: entry }, ...step({ sync: 'ckpt' }) })).toEqual([]);
    expect(issues({ sync: { ckpt: entry }, ...step({ sync: 'ckt' }) })).toEqual(['steps[0].snapshot.sync: got "ckt": expected one of ckpt']);
    expect(issues(step({ sync: 'ckpt' }))).toEqual(['steps[0].snapshot.sync: got "ckpt": expected an entry of the top-level sync: section (there is none)']);
    expect(issues({ sync: { ckpt: entry }, ...step({ sync: 'ckpt', paths: ['/x'], mode: 'files' }) })).toEqual([
      "steps[0].snapshot.paths: a snapshot tied to sync ckpt stores the sync's paths to its destination: drop paths",
      'steps[0].snapshot.mode: a snapshot tied to a sync stores in dedup mode: drop mode',
    ]);
    expect(issues(step({}))).toEqual([
      'steps[0].snapshot.paths: expected paths: files, directories or globs to store (or sync: a background sync)',
      'steps[0].snapshot.to: expected to: where to store them, such as s3://bucket/prefix/ (or sync: a background sync)',
    ]);
    expect(snapshotOptionsSchema.parse({ sync: 'ckpt' })).toMatchObject({ sync: 'ckpt', mode: 'dedup', paths: null, to: null });
  });
});

describe('the token bucket', () => {
  test('holds a sender back once the bytes run ahead of the rate, and lets it go at once when lifted', async () => {
    const bucket = new TokenBucket(1000);
    expect(bucket.cap).toBe(1000);
    let sent = false;
    const taking = bucket.take(1e9, new AbortController().signal).then(() => (sent = true));
    for (let i = 0; i < 5; i += 1) await tick();
    expect(sent).toBe(false);
    const release = bucket.lift();
    expect(bucket.cap).toBeNull();
    await taking;
    await bucket.take(1e9, new AbortController().signal);
    release();
    expect(bucket.cap).toBe(1000);
  });

  test('takeNow never waits: it spends tokens while there are any, then refuses until they refill; no cap or a lifted one lets everything through', () => {
    let now = 0;
    const bucket = new TokenBucket(1000, () => now);
    // It starts empty.
    expect(bucket.takeNow(1)).toBe(false);
    now = 1000;
    // A second refills half a second's worth at most (500 tokens): one chunk may overdraw it.
    expect(bucket.takeNow(800)).toBe(true);
    expect(bucket.takeNow(1)).toBe(false);
    now = 1200;
    expect(bucket.takeNow(1)).toBe(false);
    now = 1400;
    expect(bucket.takeNow(1)).toBe(true);
    const release = bucket.lift();
    expect(bucket.takeNow(1e9)).toBe(true);
    release();
    expect(new TokenBucket(null).takeNow(1e9)).toBe(true);
  });

  test('a waiting sender stops when its signal aborts', async () => {
    const bucket = new TokenBucket(1);
    const stop = new AbortController();
    const taking = bucket.take(1e6, stop.signal);
    stop.abort(new Error('stopping'));
    await expect(taking).rejects.toThrow('stopping');
  });
});

/** The nice value (field 19 of /proc/<pid>/task/<tid>/stat) of each thread of this process. */
async function threadNiceValues(): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  for (const tid of await readdir('/proc/self/task')) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => undefined);
    // Fields after the command name (in parentheses, which may hold spaces): state is field 3, nice field 19.
    if (stat) values.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return values;
}

const linux = process.platform === 'linux' ? describe : describe.skip;
linux('the sync reading thread (Linux)', () => {
  test('runs at nice 19 while the main thread keeps its priority', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sync-nice-'));
    const reader = FileReader.start({ nice: 19 });
    try {
      await writeFile(join(dir, 'a.bin'), 'x');
      const file = (await walkPaths([join(dir, 'a.bin')], [], new AbortController().signal)).entries[0] as FoundFile;
      const read = await reader.open(file, { exactSize: false, partSize: 1024, checksum: 'crc32' });
      for await (const part of read.parts) part.release?.();
      await read.result();
      const values = await threadNiceValues();
      expect([...values.values()]).toContain(19);
      expect(values.get(String(process.pid))).toBe(0);
    } finally {
      await reader.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('scan plans', () => {
  const file: FoundFile = { type: 'file', source: '/data/ckpt/model.pt', name: 'ckpt/model.pt', size: 3, mtimeMs: 1_000, mode: 0o644, dev: 1, ino: 2 };
  const planAt = (scannedAt: number) => ({ file, entry: { type: 'file' as const, path: file.name, size: 3, mtime: new Date(1_000).toISOString(), mode: 0o644, crc32: '00000000', chunks: [['ab'.repeat(32), 3] as [string, number]] }, owed: new Set([0]), scannedAt });

  test('a plan holds while its file is as scanned, and not once the file moved', () => {
    const plans = new ScanPlans();
    const plan = planAt(Date.now());
    plans.add([plan]);
    expect(plans.holding({ ...file })).toBe(plan);
    expect(plans.holding({ ...file, mtimeMs: 2_000 })).toBeUndefined();
    expect(plans.status()).toEqual({ scannedFiles: 0, owedBytes: 0 });
  });

  test('a plan scanned longer ago than the chunk-reuse window is dropped: a prune may have deleted what it relied on', () => {
    const plans = new ScanPlans();
    const now = Date.now();
    plans.add([planAt(now - CHUNK_REUSE_WINDOW_MS - 1)]);
    expect(plans.holding(file, now)).toBeUndefined();
    expect(plans.status().scannedFiles).toBe(0);
    const fresh = planAt(now - CHUNK_REUSE_WINDOW_MS + 60_000);
    plans.add([fresh]);
    expect(plans.holding(file, now)).toBe(fresh);
  });
});
