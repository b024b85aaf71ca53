import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { readCatalog } from '../../src/snapshots/catalog.js';
import { chunkedBody } from '../../src/snapshots/restore-chunks.js';
import { prune } from '../../src/snapshots/prune.js';
import { chunkHome, chunkName, manifestObjects, packName, readManifest } from '../../src/snapshots/repository.js';
import type { Manifest, ManifestFile } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { restore } from '../../src/snapshots/restore.js';
import { DEFAULT_GRACE_MS, type RetentionPolicy } from '../../src/snapshots/retention.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { keyFor, parseLocation, type StoreLocation } from '../../src/stores/location.js';
import { openStore } from '../../src/stores/registry.js';
import type { ObjectStore } from '../../src/stores/types.js';
import { commitDedupSnapshot } from '../helpers/dedup-repository.js';
import { S3_CREDENTIALS, startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { testStepContext } from '../helpers/step-context.js';
import { testBytes } from '../helpers/seed.js';

/**
 * Retention against real repositories: manifests made by dedup snapshots, on file:// and on
 * s3rver. Time is moved by handing prune a later `now`, or by ageing files on disk.
 */

const MIB = 1024 * 1024;
const DAY = 24 * 60 * 60_000;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let dir: string;
const savedEnv = { ...process.env };
const source = () => join(dir, 'src');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prune-test-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  process.env = { ...savedEnv };
});

interface Repo {
  url: string;
  extra: { endpoint?: string; forcePathStyle?: boolean; region?: string };
}

const storeOptions = (repo: Repo) => ({ ...repo.extra, partSize: 8 * MIB, queueSize: 1, concurrency: 4, signal: new AbortController().signal, log: silentLogger() });

async function openRepo(repo: Repo): Promise<{ store: ObjectStore; location: StoreLocation }> {
  const location = parseLocation(repo.url);
  return { store: await openStore(location, storeOptions(repo)), location };
}

/** Writes the checkpoint tree and takes a dedup snapshot of it; returns the files' bytes. */
async function checkpoint(repo: Repo, files: Record<string, Buffer>): Promise<Record<string, Buffer>> {
  await rm(source(), { recursive: true, force: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(source(), 'ckpt', name)), { recursive: true });
    await writeFile(join(source(), 'ckpt', name), content);
  }
  const step = testStepContext({ timeoutMs: 30_000 });
  try {
    await snapshotStep.run(snapshotOptionsSchema.parse({ paths: [join(source(), 'ckpt')], to: repo.url, mode: 'dedup', ...repo.extra }), step.context);
  } finally {
    step.dispose();
  }
  return files;
}

/** Three checkpoints sharing a frozen file, each with its own model: manifests oldest first. */
async function threeCheckpoints(repo: Repo) {
  const frozen = testBytes(MIB);
  const made = [];
  for (let index = 0; index < 3; index += 1) made.push(await checkpoint(repo, { 'frozen.pt': frozen, 'model.pt': testBytes(MIB + index * 1000) }));
  const { store, location } = await openRepo(repo);
  const catalog = await readCatalog(store, location);
  await store.close();
  return { made, names: catalog.snapshots.map((record) => record.name).reverse() };
}

async function everyKey(repo: Repo): Promise<Map<string, number>> {
  const { store, location } = await openRepo(repo);
  const keys = new Map<string, number>();
  for await (const object of store.list(location.prefix)) keys.set(object.key, object.size);
  await store.close();
  return keys;
}

async function runPrune(repo: Repo, policy: Partial<RetentionPolicy>, apply: boolean, now = Date.now()) {
  const { store, location } = await openRepo(repo);
  try {
    return await prune(store, location, { policy: { graceMs: DEFAULT_GRACE_MS, ...policy }, apply, log: silentLogger(), now });
  } finally {
    await store.close();
  }
}

/** Rebuilds each file of a stored manifest from its packs or chunks and compares it with what was written. */
async function expectRestorable(repo: Repo, name: string, files: Record<string, Buffer>) {
  const { store, location } = await openRepo(repo);
  try {
    const manifest = await readManifest(store, location, name);
    for (const entry of manifest.files) {
      if (entry.type !== 'file') continue;
      const parts: Buffer[] = [];
      for await (const piece of chunkedBody(store, location, entry)) parts.push(piece);
      expect(sha256(Buffer.concat(parts))).toBe(sha256(files[relative('ckpt', entry.path)]!));
    }
  } finally {
    await store.close();
  }
}

/** The objects (packs or chunks) only the first of `names` needs, with their bytes: what a prune keeping the others deletes. */
async function onlyFirstNeeds(repo: Repo, names: string[]): Promise<{ objects: number; bytes: number }> {
  const { store, location } = await openRepo(repo);
  try {
    const [first, ...others] = await Promise.all(names.map((name) => readManifest(store, location, name)));
    const kept = new Set(others.flatMap((manifest) => [...manifestObjects(manifest)]));
    const only = [...manifestObjects(first!)].filter((name) => !kept.has(name));
    const sizes = await Promise.all(only.map(async (name) => (await store.stat(keyFor(location, name)))!.size));
    return { objects: only.length, bytes: sizes.reduce((sum, size) => sum + size, 0) };
  } finally {
    await store.close();
  }
}

async function restoreLatest(repo: Repo) {
  const out = join(dir, `out-${Math.random().toString(16).slice(2)}`);
  await restore({ from: repo.url, latest: true, to: out, log: silentLogger(), signal: new AbortController().signal, ...repo.extra });
  return out;
}

function retentionTests(repoOf: () => Repo) {
  test('lists every snapshot newest first and names the latest', async () => {
    const repo = repoOf();
    const { names } = await threeCheckpoints(repo);
    const { store, location } = await openRepo(repo);
    const catalog = await readCatalog(store, location);
    await store.close();
    expect(catalog.snapshots.map((record) => record.name)).toEqual([...names].reverse());
    expect(catalog.latest).toBe(names[2]);
    expect(catalog.snapshots[0]!.manifest).toMatchObject({ complete: true, bytesDone: 2 * MIB + 2000 });
    expect(catalog.refused).toEqual([]);
  });

  test('a dry run deletes nothing; --apply keeps every kept manifest restorable, byte for byte', async () => {
    const repo = repoOf();
    const { made, names } = await threeCheckpoints(repo);
    const before = await everyKey(repo);
    const later = Date.now() + 2 * DAY;

    const dry = await runPrune(repo, { keepLast: 2 }, false, later);
    expect(dry.manifests).toEqual([names[0]]);
    // The oldest model's packs or chunks only: the frozen file is shared with the kept snapshots.
    const oldest = await onlyFirstNeeds(repo, names);
    expect(dry.objects).toBe(oldest.objects);
    expect(dry.bytes).toBe(oldest.bytes + before.get(`${parseLocation(repo.url).prefix}${names[0]}`)!);
    expect(await everyKey(repo)).toEqual(before);

    const applied = await runPrune(repo, { keepLast: 2 }, true, later);
    expect(applied).toMatchObject({ manifests: dry.manifests, objects: dry.objects, bytes: dry.bytes, applied: true });
    const after = await everyKey(repo);
    expect(before.size - after.size).toBe(1 + dry.objects);
    await expectRestorable(repo, names[1]!, made[1]!);
    await expectRestorable(repo, names[2]!, made[2]!);
    const out = await restoreLatest(repo);
    expect(sha256(await readFile(join(out, 'ckpt/model.pt')))).toBe(sha256(made[2]!['model.pt']!));

    // Run again: nothing left to do.
    expect(await runPrune(repo, { keepLast: 2 }, true, later)).toMatchObject({ manifests: [], objects: 0 });
  });

  test('the grace keeps what was written recently, whatever the policy', async () => {
    const repo = repoOf();
    const { names } = await threeCheckpoints(repo);
    const report = await runPrune(repo, { keepLast: 0 }, true);
    expect(report).toMatchObject({ manifests: [], objects: 0 });
    expect(report.kept.map((entry) => entry.name)).toEqual([...names].reverse());
    expect(report.kept[0]!.reasons).toEqual(['latest', 'grace']);
  });
}

describe('retention on file://', () => {
  retentionTests(() => ({ url: `file://${join(dir, 'repo')}/`, extra: {} }));

  const repo = (): Repo => ({ url: `file://${join(dir, 'repo')}/`, extra: {} });
  const readManifestFile = async (name: string) => JSON.parse(await readFile(join(dir, 'repo', name), 'utf8')) as Manifest;
  const age = async (path: string, ms: number) => {
    const then = new Date(Date.now() - ms);
    await utimes(join(dir, 'repo', path), then, then);
  };

  test('a prune stopped while it reads the manifests reads no more of them and deletes nothing', async () => {
    const { names } = await threeCheckpoints(repo());
    for (const name of names) await age(name, 3 * DAY);
    const before = await everyKey(repo());
    const { store, location } = await openRepo(repo());
    const stop = new AbortController();
    const manifestsRead: string[] = [];
    const get = store.get.bind(store);
    store.get = (key) => {
      if (key.includes('snapshots/')) {
        manifestsRead.push(key);
        stop.abort();
      }
      return get(key);
    };
    try {
      await expect(prune(store, location, { policy: { graceMs: DEFAULT_GRACE_MS, keepLast: 1 }, apply: true, log: silentLogger(), signal: stop.signal })).rejects.toMatchObject({ name: 'AbortError' });
    } finally {
      await store.close();
    }
    expect(manifestsRead).toHaveLength(1);
    expect(await everyKey(repo())).toEqual(before);
  });

  test("keeps the manifest latest.json named when the grace began, and an unreferenced chunk written within the grace", async () => {
    const { names } = await threeCheckpoints(repo());
    await age(names[0]!, 3 * DAY);
    await age(names[1]!, 2 * DAY);
    const stray = chunkName('ab'.repeat(32));
    await mkdir(join(dir, 'repo', dirname(stray)), { recursive: true });
    await writeFile(join(dir, 'repo', stray), 'a chunk a writer just put, for a manifest not yet committed');
    const oldStray = chunkName('cd'.repeat(32));
    await mkdir(join(dir, 'repo', dirname(oldStray)), { recursive: true });
    await writeFile(join(dir, 'repo', oldStray), 'left by a snapshot cut long ago');
    await age(oldStray, 2 * DAY);

    const report = await runPrune(repo(), { keepLast: 1 }, true);
    expect(report.manifests).toEqual([names[0]]);
    expect(report.kept).toEqual([
      { name: names[2], reasons: ['latest', 'last', 'grace'] },
      { name: names[1], reasons: ['latest-at-grace'] },
    ]);
    expect(report.objectsInGrace).toBeGreaterThanOrEqual(1);
    await expect(stat(join(dir, 'repo', stray))).resolves.toBeTruthy();
    await expect(stat(join(dir, 'repo', oldStray))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a crafted manifest stops the prune before anything is deleted; keys that are not the repository\'s are left alone', async () => {
    await threeCheckpoints(repo());
    const before = await everyKey(repo());
    await writeFile(
      join(dir, 'repo/snapshots/crafted.json'),
      JSON.stringify({ ...JSON.parse(await readFile(join(dir, 'repo/snapshots', (await readdir(join(dir, 'repo/snapshots')))[0]!), 'utf8')), files: [{ type: 'file', path: 'x', size: 1, mtime: '', mode: 420, crc32: '00000000', chunks: [['../../../etc/passwd', 1]] }] }),
    );
    await expect(runPrune(repo(), { keepLast: 0 }, true, Date.now() + 2 * DAY)).rejects.toThrow(
      /nothing was deleted: a manifest does not read as a preemptd manifest .*\n {2}snapshots\/crafted\.json: .*files\.0\.chunks\.0\.0: expected a SHA-256/s,
    );
    await rm(join(dir, 'repo/snapshots/crafted.json'));
    expect(await everyKey(repo())).toEqual(before);

    const pointer = await readFile(join(dir, 'repo/latest.json'), 'utf8');
    await writeFile(join(dir, 'repo/latest.json'), JSON.stringify({ version: 1, manifest: '../elsewhere/x.json', finishedAt: '' }));
    await expect(runPrune(repo(), { keepLast: 0 }, true, Date.now() + 2 * DAY)).rejects.toThrow(/nothing was deleted: .*latest\.json is not a preemptd snapshot pointer: manifest: expected snapshots\/<name>\.json/);
    await writeFile(join(dir, 'repo/latest.json'), JSON.stringify({ ...JSON.parse(pointer), manifest: 'snapshots/gone.json' }));
    await expect(runPrune(repo(), { keepLast: 0 }, true, Date.now() + 2 * DAY)).rejects.toThrow(/latest\.json names snapshots\/gone\.json, which does not exist; nothing was deleted/);
    await writeFile(join(dir, 'repo/latest.json'), pointer);
    expect(await everyKey(repo())).toEqual(before);

    await mkdir(join(dir, 'repo/chunks/ab'), { recursive: true });
    await writeFile(join(dir, 'repo/chunks/ab/not-a-chunk'), 'mine');
    await writeFile(join(dir, 'repo/snapshots/notes.txt'), 'mine too');
    await age('chunks/ab/not-a-chunk', 3 * DAY);
    await runPrune(repo(), { keepLast: 0 }, true, Date.now() + 2 * DAY);
    expect(await readFile(join(dir, 'repo/chunks/ab/not-a-chunk'), 'utf8')).toBe('mine');
    expect(await readFile(join(dir, 'repo/snapshots/notes.txt'), 'utf8')).toBe('mine too');
  });

  test('.partial files a killed writer left under the prefix go once older than the grace; a fresh one, one outside the prefix or through a link stays', async () => {
    await threeCheckpoints(repo());
    await mkdir(join(dir, 'repo/chunks/ab'), { recursive: true });
    await mkdir(join(dir, 'outside'), { recursive: true });
    const old = ['chunks/ab/.0123abcd.partial', 'snapshots/.89abcdef.partial', '.deadbeef.partial'];
    for (const path of old) {
      await writeFile(join(dir, 'repo', path), 'cut by a kill -9');
      await age(path, 2 * DAY);
    }
    await writeFile(join(dir, 'repo/chunks/ab/.fedcba98.partial'), 'a writer is filling it now');
    // Outside the prefix, and reached through a link from inside it: not the repository's.
    await writeFile(join(dir, 'outside/.11111111.partial'), 'not ours');
    await utimes(join(dir, 'outside/.11111111.partial'), new Date(Date.now() - 2 * DAY), new Date(Date.now() - 2 * DAY));
    await symlink(join(dir, 'outside'), join(dir, 'repo/chunks/cd'));
    await symlink(join(dir, 'outside/.11111111.partial'), join(dir, 'repo/.22222222.partial'));

    const dry = await runPrune(repo(), { keepLast: 3 }, false);
    expect(dry).toMatchObject({ manifests: [], objects: 0, leftovers: 3 });
    for (const path of old) await expect(stat(join(dir, 'repo', path))).resolves.toBeTruthy();

    const applied = await runPrune(repo(), { keepLast: 3 }, true);
    expect(applied).toMatchObject({ manifests: [], objects: 0, leftovers: 3 });
    for (const path of old) await expect(stat(join(dir, 'repo', path))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(join(dir, 'repo/chunks/ab/.fedcba98.partial'), 'utf8')).toBe('a writer is filling it now');
    expect(await readFile(join(dir, 'outside/.11111111.partial'), 'utf8')).toBe('not ours');
    expect((await lstat(join(dir, 'repo/.22222222.partial'))).isSymbolicLink()).toBe(true);
    await expect(restoreLatest(repo())).resolves.toBeTruthy();
  });

  test('packs: one no kept manifest names goes once past the grace; one a kept manifest names a chunk of stays whole; anything else under packs/ stays', async () => {
    const layout = { chunkBytes: 64 * 1024, home: () => 'pack' as const, packBytes: 256 * 1024 };
    const first = { 'ckpt/a.pt': testBytes(256 * 1024), 'ckpt/b.pt': testBytes(256 * 1024) };
    const older = commitDedupSnapshot(join(dir, 'repo'), first, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, layout);
    const packOf = async (name: string, path: string) => {
      const manifest = await readManifestFile(name);
      return manifest.files.find((entry) => entry.path === path) as ManifestFile;
    };
    const a = await packOf(older, 'ckpt/a.pt');
    const b = await packOf(older, 'ckpt/b.pt');
    const newer = commitDedupSnapshot(join(dir, 'repo'), { 'ckpt/c.pt': testBytes(100 * 1024) }, { mtime: '2026-01-02T00:00:00.000Z', finishedAt: '2026-01-02T00:05:00.000Z' }, layout);
    // The newer snapshot also names the first chunk of a.pt's pack: that pack is partly referenced.
    const [head] = a.chunks!;
    const headBytes = first['ckpt/a.pt'].subarray(0, head![1]);
    const manifest = await readManifestFile(newer);
    manifest.files.push({ ...a, path: 'ckpt/a-head.pt', size: head![1], sha256: sha256(headBytes), chunks: [head!] });
    await writeFile(join(dir, 'repo', newer), JSON.stringify(manifest));
    const packA = chunkHome(head!);
    const packB = chunkHome(b.chunks![0]!);
    const stray = { old: packName('0'.repeat(24)), fresh: packName('1'.repeat(24)), notOurs: 'packs/notes.txt', upper: `packs/${'A'.repeat(24)}` };
    for (const path of Object.values(stray)) await writeFile(join(dir, 'repo', path), 'left by someone');
    for (const path of [older, newer, packA, packB, stray.old, stray.notOurs, stray.upper]) await age(path, 3 * DAY);

    const dry = await runPrune(repo(), { keepLast: 1 }, false);
    expect(dry).toMatchObject({ manifests: [older], objects: 2, objectsInGrace: 1 });
    const report = await runPrune(repo(), { keepLast: 1 }, true);
    expect(report).toMatchObject({ manifests: [older], objects: 2, objectsInGrace: 1, bytes: dry.bytes });
    const left = await everyKey(repo());
    for (const kept of [newer, packA, stray.fresh, stray.notOurs, stray.upper]) expect({ kept, left: left.has(kept) }).toEqual({ kept, left: true });
    for (const gone of [older, packB, stray.old]) expect({ gone, left: left.has(gone) }).toEqual({ gone, left: false });
    // Kept whole: b.pt's chunks are gone with their pack, a.pt's beside the named one are still there.
    expect(left.get(packA)).toBe(256 * 1024);
    const out = await restoreLatest(repo());
    expect((await readFile(join(out, 'ckpt/a-head.pt'))).equals(headBytes)).toBe(true);
  });

});

describe('retention on S3 (s3rver)', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => server.close());

  retentionTests(() => {
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    return { url: `s3://${server.bucket}/${Math.random().toString(16).slice(2)}/`, extra: { endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' } };
  });
});
