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
 * A write failing in the middle of a dedup file: the restore runs under `ulimit -f 64` (files
 * of at most 64 KiB), so writing the large file past 64 KiB fails with EFBIG. The restore ends
 * (no hang) with an error naming the file and the cause (a write refused, not a download failed), the large file never appears under
 * its name, no partial file is left, and the small file is restored.
 */
test('a file that cannot be written fails naming it and the cause; nothing of it is left', async () => {
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
    expect(failed.stdout + failed.stderr).toMatch(/ckpt\/big\.pt: cannot write it: EFBIG: file too large/);
    expect((await readdir(out, { recursive: true })).sort()).toEqual(['ckpt', 'ckpt/small.json']);
    expect(await readFile(join(out, 'ckpt/small.json'))).toEqual(files['ckpt/small.json']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
