import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { partialFor } from '../../src/snapshots/restore-entries.js';
import { restore, type RestoreOptions } from '../../src/snapshots/restore.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'restore-edges-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A files-mode manifest of `files` and `links`, hand-written as a hostile store could serve it. */
function manifestOf(files: Array<{ path: string; content: string; mode?: number; size?: number }>, links: Array<{ path: string; target: string }> = [], mode: 'files' | 'archive' = 'files') {
  return {
    version: 1, mode, checksum: 'sha256', archive: null, notice: {}, host: {}, startedAt: '', finishedAt: '', deadline: '',
    complete: true, bytesWanted: 0, bytesDone: 0, skipped: [], excluded: 0,
    files: [
      ...files.map((file) => ({ type: 'file', path: file.path, size: file.size ?? file.content.length, mtime: '2026-01-01T00:00:00.000Z', mode: file.mode ?? 0o644, sha256: sha256(file.content) })),
      ...links.map((link) => ({ type: 'symlink', ...link })),
    ],
  };
}

/** Stores `manifest` (and `objects`) in a file:// store and restores it into `to`. */
async function restoreFrom(manifest: object | Buffer, objects: Record<string, string> = {}, to = join(dir, 'out'), extra: Partial<RestoreOptions> = {}) {
  const store = join(dir, 'store');
  await mkdir(store, { recursive: true });
  await writeFile(join(store, 'manifest.json'), Buffer.isBuffer(manifest) ? manifest : JSON.stringify(manifest));
  for (const [key, content] of Object.entries(objects)) {
    await mkdir(join(store, key, '..'), { recursive: true });
    await writeFile(join(store, key), content);
  }
  return restore({ from: `file://${store}/`, to, log: silentLogger(), signal: new AbortController().signal, ...extra });
}

describe('restore stays inside --to', () => {
  test("a link planted where the marker is written (.preemptd-restore.json.partial) is replaced, never written through", async () => {
    const to = join(dir, 'out');
    await mkdir(to, { recursive: true });
    await writeFile(join(dir, 'victim'), 'keep');
    await symlink(join(dir, 'victim'), join(to, '.preemptd-restore.json.partial'));

    await restoreFrom(manifestOf([{ path: 'a.txt', content: 'restored' }]), { 'a.txt': 'restored' }, to);

    expect(await readFile(join(dir, 'victim'), 'utf8')).toBe('keep');
    expect(JSON.parse(await readFile(join(to, '.preemptd-restore.json'), 'utf8'))).toMatchObject({ from: expect.stringContaining('file://') });
    expect((await readdir(to)).sort()).toEqual(['.preemptd-restore.json', 'a.txt']);
  });

  test('chained links (a/b/c -> .., then a/b/c/d -> ../..) cannot carry an entry out: nothing outside is touched', async () => {
    const to = join(dir, 'up/out');
    await mkdir(to, { recursive: true });
    await writeFile(join(dir, 'up/victim'), 'keep');
    const manifest = manifestOf([], [
      { path: 'a/b/c', target: '..' },
      { path: 'a/b/c/d', target: '../..' },
      { path: 'a/d/victim', target: 'planted' },
    ]);

    const run = restoreFrom(manifest, {}, to);

    await expect(run).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringContaining('1 links refused:\n  a/b/c/d: a/b/c is a symbolic link: not followed') });
    expect(await readFile(join(dir, 'up/victim'), 'utf8')).toBe('keep');
    expect((await readdir(join(dir, 'up'))).sort()).toEqual(['out', 'victim']);
    // The third link landed in a real directory inside --to.
    expect((await lstat(join(to, 'a/d'))).isDirectory()).toBe(true);
  });

  test('a file under a link already in --to is refused, not written through it', async () => {
    const to = join(dir, 'out');
    await mkdir(join(dir, 'elsewhere'), { recursive: true });
    await mkdir(to);
    await symlink(join(dir, 'elsewhere'), join(to, 'ckpt'));

    const run = restoreFrom(manifestOf([{ path: 'ckpt/model.pt', content: 'weights' }]), { 'ckpt/model.pt': 'weights' }, to);

    await expect(run).rejects.toThrow('ckpt/model.pt: ckpt is a symbolic link: not followed');
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);
  });

  test('a refused file is never opened in the store: no descriptor is left open', async () => {
    const to = join(dir, 'out');
    await mkdir(join(dir, 'elsewhere'), { recursive: true });
    await mkdir(to);
    await symlink(join(dir, 'elsewhere'), join(to, 'ckpt'));
    const files = ['a', 'b', 'c', 'd'].map((name) => ({ path: `ckpt/${name}.pt`, content: 'weights' }));
    const fdsBefore = (await readdir('/proc/self/fd')).length;

    await expect(restoreFrom(manifestOf(files), Object.fromEntries(files.map((file) => [file.path, file.content])), to)).rejects.toThrow('is a symbolic link');

    expect((await readdir('/proc/self/fd')).length).toBeLessThanOrEqual(fdsBefore);
  });
});

describe('restore reads and writes only what the manifest declares', () => {
  test('an object far larger than its declared size is cut at the size, and nothing is left', async () => {
    const manifest = manifestOf([{ path: 'x', content: '0123456789' }]);
    const store = join(dir, 'store');
    await mkdir(store, { recursive: true });
    // 256 MiB of (sparse) zeros for a 10-byte entry.
    await writeFile(join(store, 'x'), '');
    await truncate(join(store, 'x'), 256 * 1024 ** 2);

    const run = restoreFrom(manifest);

    await expect(run).rejects.toThrow("x: larger than the manifest's 10 bytes: stopped there");
    expect(await readdir(join(dir, 'out'))).toEqual([]);
  });

  test('an archive entry whose header claims more than the manifest is not written at all', async () => {
    const tar = await import('tar-stream');
    const pack = tar.pack();
    pack.entry({ name: 'x', size: 300_000 }, Buffer.alloc(300_000));
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    const archive = Buffer.concat(chunks);
    const manifest = { ...manifestOf([{ path: 'x', content: '0123456789' }], [], 'archive'), archive: { key: 'snapshot.tar', compression: 'none', size: archive.length, sha256: sha256(archive) } };
    await mkdir(join(dir, 'store'), { recursive: true });
    await writeFile(join(dir, 'store/snapshot.tar'), archive);

    const run = restoreFrom(manifest);

    await expect(run).rejects.toThrow('x: archive entry of 300000 bytes, manifest says 10: not written');
  });

  test('a manifest.json over 256 MiB is refused with a clear error, not read to its end', async () => {
    const store = join(dir, 'store');
    await mkdir(store, { recursive: true });
    await writeFile(join(store, 'manifest.json'), '');
    await truncate(join(store, 'manifest.json'), 300 * 1024 ** 2);

    const run = restore({ from: `file://${store}/`, to: join(dir, 'out'), log: silentLogger(), signal: new AbortController().signal });

    await expect(run).rejects.toMatchObject({ code: 'ERR_RESTORE', message: `file://${store}/manifest.json is larger than 256 MiB: not a preemptd manifest` });
  });

  test('setuid and setgid bits are dropped unless asked for', async () => {
    const manifest = manifestOf([{ path: 'tool', content: '#!/bin/sh\n', mode: 0o6755 }]);

    await restoreFrom(manifest, { tool: '#!/bin/sh\n' });
    expect((await stat(join(dir, 'out/tool'))).mode & 0o7777).toBe(0o755);

    await restoreFrom(manifest, { tool: '#!/bin/sh\n' }, join(dir, 'kept'), { keepSetuid: true });
    expect((await stat(join(dir, 'kept/tool'))).mode & 0o7777).toBe(0o6755);
  });
});

test('the temporary file a restore killed mid-write left is replaced and removed by the next restore, and a link planted at its name is not written through', async () => {
  const to = join(dir, 'out');
  await mkdir(join(to, 'ckpt'), { recursive: true });
  // As a kill -9 leaves them: half of model.pt under its temporary name, and a link where optim.pt's goes.
  await writeFile(partialFor(join(to, 'ckpt/model.pt')), 'weig');
  await writeFile(join(dir, 'victim'), 'keep');
  await symlink(join(dir, 'victim'), partialFor(join(to, 'ckpt/optim.pt')));
  const manifest = manifestOf([
    { path: 'ckpt/model.pt', content: 'weights' },
    { path: 'ckpt/optim.pt', content: 'moments' },
  ]);

  await restoreFrom(manifest, { 'ckpt/model.pt': 'weights', 'ckpt/optim.pt': 'moments' }, to);

  expect((await readdir(join(to, 'ckpt'))).sort()).toEqual(['model.pt', 'optim.pt']);
  expect(await readFile(join(to, 'ckpt/model.pt'), 'utf8')).toBe('weights');
  expect(await readFile(join(dir, 'victim'), 'utf8')).toBe('keep');
});
