import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI } from '../helpers/cli.js';
import { commitDedupSnapshot } from '../helpers/dedup-repository.js';
import { testBytes } from '../helpers/seed.js';

const execFileAsync = promisify(execFile);
const KIB = 1024;

/**
 * A chunk write failing on a restore writing thread (restore-worker.ts): the restore runs under
 * `ulimit -f 64` (files of at most 64 KiB), so the thread's pwrite past 64 KiB of the large file
 * fails with EFBIG. The restore ends (no hang) with an error naming the chunk and the byte, the
 * large file never appears under its name, no partial file is left, and the small file is
 * restored.
 */
test('a chunk the writing thread cannot write fails its file naming the chunk; nothing of it is left', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'restore-write-failure-'));
  try {
    const repo = join(dir, 'repo');
    const out = join(dir, 'out');
    const files = { 'ckpt/big.pt': testBytes(256 * KIB), 'ckpt/small.json': testBytes(10 * KIB) };
    commitDedupSnapshot(repo, files, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, 16 * KIB);
    const command = `ulimit -f 64 && exec "$0" "$@"`;
    const run = execFileAsync('bash', ['-c', command, process.execPath, CLI, 'restore', '--latest', `file://${repo}/`, '--to', out, '--json'], { timeout: 30_000 });
    const failed = (await run.then(
      () => undefined,
      (error: { code: number; stdout: string; stderr: string }) => error,
    ))!;

    expect(failed.code).toBe(1);
    expect(failed.stdout + failed.stderr).toMatch(new RegExp(`ckpt/big\\.pt: download failed: chunk file://.*/chunks/[0-9a-f]{2}/[0-9a-f]{64} not written at byte 65536 of the file: EFBIG`));
    expect((await readdir(out, { recursive: true })).sort()).toEqual(['ckpt', 'ckpt/small.json']);
    expect(await readFile(join(out, 'ckpt/small.json'))).toEqual(files['ckpt/small.json']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
