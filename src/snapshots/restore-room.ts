import { lstat, statfs } from 'node:fs/promises';
import { PreemptdError } from '../lib/errors.js';
import type { ManifestFile } from './manifest.js';
import { insideTarget } from './restore-entries.js';

/**
 * Refuses, before anything is fetched, a restore that cannot fit: the manifest's files, less
 * those of the same size already at their place (a warm restore keeps or replaces them),
 * against the space free under `target`. A crafted manifest's absurd sizes end here, not
 * with a full disk.
 */
export async function checkRoom(target: string, files: ManifestFile[]): Promise<void> {
  let needed = 0;
  for (const file of files) {
    const there = await lstat(insideTarget(target, file.path)).catch(() => undefined);
    if (!there?.isFile() || there.size !== file.size) needed += file.size;
  }
  const { bavail, bsize } = await statfs(target);
  const free = bavail * bsize;
  if (needed > free) throw new PreemptdError('ERR_RESTORE', `the snapshot needs ${needed} more bytes under ${target}, only ${free} are free: nothing fetched`);
}
