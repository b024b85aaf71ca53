import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { restore } from '../../src/snapshots/restore.js';
import { commitDedupSnapshot } from '../helpers/dedup-repository.js';
import { testBytes } from '../helpers/seed.js';

// A dedup repository is data from the store: a manifest, pointer or chunk that is missing,
// truncated, corrupted or crafted is an ERR_RESTORE naming it; no file appears under its
// final name unverified, and nothing outside --to is touched. (A corrupted chunk, a missing
// chunk, a pointer leaving the prefix and chunk sizes that do not add up: snapshot-dedup.test.ts.)

const KIB = 1024;
let dir: string;
let repo: string;
let out: string;
const TIMES = { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'restore-bad-'));
  repo = join(dir, 'repo');
  out = join(dir, 'up', 'out');
  await mkdir(join(dir, 'up'), { recursive: true });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const restoreLatest = () => restore({ from: `file://${repo}/`, latest: true, to: out, log: silentLogger(), signal: new AbortController().signal });

/** Every regular file and link under `path` (none for a missing directory), relative. */
async function filesUnder(path: string): Promise<string[]> {
  const entries = await readdir(path, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => !entry.isDirectory()).map((entry) => join(entry.parentPath, entry.name).slice(path.length + 1)).sort();
}

/** A snapshot of one 64 KiB file in 16 KiB chunks; returns its manifest's name and its chunks' paths. */
async function oneFile(): Promise<{ name: string; chunks: string[] }> {
  const name = commitDedupSnapshot(repo, { 'ckpt/model.pt': testBytes(64 * KIB) }, TIMES, 16 * KIB);
  const manifest = JSON.parse(await readFile(join(repo, name), 'utf8')) as { files: { chunks: [string, number][] }[] };
  return { name, chunks: manifest.files[0]!.chunks.map(([sha]) => join(repo, 'chunks', sha.slice(0, 2), sha)) };
}

/** Rewrites the manifest `name` with `edit`. */
async function editManifest(name: string, edit: (manifest: { files: Array<Record<string, any>> }) => void): Promise<void> {
  const manifest = JSON.parse(await readFile(join(repo, name), 'utf8')) as { files: Array<Record<string, any>> };
  edit(manifest);
  await writeFile(join(repo, name), JSON.stringify(manifest));
}

describe('restore --latest of a bad repository', () => {
  test('a truncated chunk in the middle of a file fails it naming the chunk; neither the file nor a partial is left', async () => {
    const { chunks } = await oneFile();
    await truncate(chunks[2]!, 100);
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringMatching(new RegExp(`ckpt/model.pt: download failed: chunk file://.*${chunks[2]!.slice(repo.length + 1)} is 100 bytes, the manifest says 16384`)) });
    expect(await filesUnder(out)).toEqual([]);
  });

  test('a chunk longer than the manifest says is cut there and fails the file naming it', async () => {
    const { chunks } = await oneFile();
    await writeFile(chunks[0]!, Buffer.concat([await readFile(chunks[0]!), Buffer.from('more')]));
    await expect(restoreLatest()).rejects.toThrow(/chunk file:\/\/.* is larger than the manifest's 16384 bytes/);
    expect(await filesUnder(out)).toEqual([]);
  });

  test('a truncated manifest and a truncated pointer are named, not parsed', async () => {
    const { name } = await oneFile();
    const manifest = await readFile(join(repo, name));
    await writeFile(join(repo, name), manifest.subarray(0, manifest.length / 2));
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: `file://${repo}/${name} is not JSON` });
    await writeFile(join(repo, 'latest.json'), '{"version": 1, "manif');
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: `file://${repo}/latest.json is not JSON` });
    expect(await filesUnder(out)).toEqual([]);
  });

  test('a pointer naming a manifest that is not there says which', async () => {
    const { name } = await oneFile();
    await rm(join(repo, name));
    await expect(restoreLatest()).rejects.toThrow(new RegExp(`^cannot read file://${repo}/${name}: `));
  });

  test('a crafted path leaving --to is refused before anything is written, and nothing outside is touched', async () => {
    const { name } = await oneFile();
    await editManifest(name, (manifest) => {
      manifest.files[0]!.path = '../escaped.pt';
    });
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: 'manifest path "../escaped.pt" would leave the restore directory' });
    expect(await filesUnder(join(dir, 'up'))).toEqual([]);
  });

  test('a chunk ref that is not a SHA-256 is refused naming where it is', async () => {
    const { name } = await oneFile();
    await editManifest(name, (manifest) => {
      manifest.files[0]!.chunks[1][0] = manifest.files[0]!.chunks[1][0].toUpperCase();
    });
    await expect(restoreLatest()).rejects.toThrow(`file://${repo}/${name} is not a preemptd manifest: files.0.chunks.1.0: expected a SHA-256: 64 lower-case hex digits`);
  });

  test('a chunk larger than any chunker cuts is refused unread: restore would hold it in memory', async () => {
    const { name } = await oneFile();
    await editManifest(name, (manifest) => {
      manifest.files[0]!.chunks = [[manifest.files[0]!.chunks[0][0], 1024 ** 3]];
      manifest.files[0]!.size = 1024 ** 3;
    });
    await expect(restoreLatest()).rejects.toThrow(`file://${repo}/${name} is not a preemptd manifest: files.0.chunks.0.1: a chunk of at most 16777216 bytes (no chunker cuts larger)`);
  });

  test('a manifest claiming more bytes than the disk holds is refused before any chunk is fetched', async () => {
    const { name } = await oneFile();
    // 100,000 refs to one 16 MiB chunk that is not even stored: 1.5 TiB, far more than any test disk.
    const size = 100_000 * 16 * 1024 * 1024;
    await editManifest(name, (manifest) => {
      manifest.files[0]!.chunks = Array.from({ length: 100_000 }, () => ['0'.repeat(64), 16 * 1024 * 1024]);
      manifest.files[0]!.size = size;
    });
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringMatching(new RegExp(`^the snapshot needs ${size} more bytes under .*/up/out, only \\d+ are free: nothing fetched$`)) });
    expect(await filesUnder(out)).toEqual([]);
  });
});

describe('restore --latest of a bad pack', () => {
  const PACKED = { chunkBytes: 16 * KIB, home: () => 'pack' as const };

  /** A snapshot of one 64 KiB file in four 16 KiB chunks, back to back in one pack; returns its manifest's name, the pack's path and the chunks. */
  async function onePack(): Promise<{ name: string; pack: string; packUrl: string; chunks: [string, number, string, number][] }> {
    const name = commitDedupSnapshot(repo, { 'ckpt/model.pt': testBytes(64 * KIB) }, TIMES, PACKED);
    const manifest = JSON.parse(await readFile(join(repo, name), 'utf8')) as { files: { chunks: [string, number, string, number][] }[] };
    const chunks = manifest.files[0]!.chunks;
    return { name, pack: join(repo, 'packs', chunks[0]![2]), packUrl: `file://${repo}/packs/${chunks[0]![2]}`, chunks };
  }

  test('a missing pack names the chunk, the pack and the byte range; nothing is left', async () => {
    const { pack, packUrl, chunks } = await onePack();
    await rm(pack);
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringContaining(`ckpt/model.pt: download failed: cannot read chunk ${chunks[0]![0]} (bytes 0+16384 of ${packUrl}): `) });
    expect(await filesUnder(out)).toEqual([]);
  });

  test('a truncated pack (the range runs past its end) names the first chunk cut short', async () => {
    const { pack, packUrl, chunks } = await onePack();
    await truncate(pack, 40_000);
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringContaining(`chunk ${chunks[2]![0]} (bytes 32768+16384 of ${packUrl}) is 7232 bytes, the manifest says 16384`) });
    expect(await filesUnder(out)).toEqual([]);
  });

  test('a corrupted byte in a pack names the chunk holding it; nothing is left', async () => {
    const { pack, packUrl, chunks } = await onePack();
    const bytes = await readFile(pack);
    bytes[20_000] = bytes[20_000]! ^ 0xff;
    await writeFile(pack, bytes);
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringMatching(new RegExp(`chunk ${chunks[1]![0]} \\(bytes 16384\\+16384 of ${packUrl}\\) has SHA-256 [0-9a-f]{64}: corrupted`)) });
    expect(await filesUnder(out)).toEqual([]);
  });

  test.each([
    ['a pack id that is not 24 hex digits', (chunk: any[]) => (chunk[2] = 'ABCDEF'.padEnd(24, '0')), 'files.0.chunks.1.2: expected a pack id: 24 lower-case hex digits'],
    ['a pack id with path characters', (chunk: any[]) => (chunk[2] = '../../../../etc/passwd00'), 'files.0.chunks.1.2: expected a pack id: 24 lower-case hex digits'],
    ['a negative offset', (chunk: any[]) => (chunk[3] = -16384), 'files.0.chunks.1.3: expected an offset in the pack: a whole number, 0 or more'],
    ['a range past the largest pack', (chunk: any[]) => (chunk[3] = 64 * 1024 * 1024 - 100), 'files.0.chunks.1: a range inside a pack of at most 67108864 bytes'],
  ])('a crafted chunk ref, %s, is refused naming where it is; nothing is fetched or written', async (_, edit, message) => {
    const { name } = await onePack();
    await editManifest(name, (manifest) => edit(manifest.files[0]!.chunks[1]));
    await expect(restoreLatest()).rejects.toThrow(`file://${repo}/${name} is not a preemptd manifest: ${message}`);
    expect(await filesUnder(join(dir, 'up'))).toEqual([]);
  });

  test('ranges out of order or overlapping are each fetched and verified: right bytes restore, wrong ones name the chunk', async () => {
    const { name, pack, packUrl, chunks } = await onePack();
    // The file's chunks, back to back: the pack is the file.
    const content = await readFile(pack);
    const part = (index: number) => content.subarray(index * 16 * KIB, (index + 1) * 16 * KIB);
    // Out of order (last chunk first), and overlapping (the same range twice).
    const reordered = Buffer.concat([part(3), part(0), part(1), part(0)]);
    await editManifest(name, (manifest) => {
      manifest.files.push({ ...manifest.files[0]!, path: 'ckpt/reordered.pt', sha256: createHash('sha256').update(reordered).digest('hex'), chunks: [chunks[3], chunks[0], chunks[1], chunks[0]] });
    });
    await restoreLatest();
    expect((await readFile(join(out, 'ckpt/reordered.pt'))).equals(reordered)).toBe(true);
    expect((await readFile(join(out, 'ckpt/model.pt'))).equals(content)).toBe(true);

    // A range straddling two chunks claims the second one's hash: it is not those bytes.
    await rm(out, { recursive: true });
    await editManifest(name, (manifest) => {
      manifest.files[1]!.chunks[1] = [chunks[1]![0], 16 * KIB, chunks[1]![2], 8 * KIB];
    });
    await expect(restoreLatest()).rejects.toMatchObject({ code: 'ERR_RESTORE', message: expect.stringMatching(new RegExp(`ckpt/reordered.pt: download failed: chunk ${chunks[1]![0]} \\(bytes 8192\\+16384 of ${packUrl}\\) has SHA-256 [0-9a-f]{64}: corrupted`)) });
    expect(await filesUnder(out)).toEqual(['ckpt/model.pt']);
  });
});
