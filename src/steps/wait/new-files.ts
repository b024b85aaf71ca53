import { setTimeout as sleep } from 'node:timers/promises';
import { walkPaths, type FoundFile } from '../../snapshots/walk.js';
import type { WaitOptions } from './options.js';

/** A file the wait has seen, and since when it has looked the same. */
interface Seen {
  file: FoundFile;
  /** Epoch ms since which size, mtime and inode have not changed. */
  sameSince: number;
}

export interface WaitProgress {
  /** New files seen so far (paths). */
  seen: string[];
  /** Those still changing, or not yet unchanged for the settle time. */
  settling: string[];
}

export interface WaitResult {
  files: { path: string; size: number; mtime: string }[];
  /** How long the wait took. */
  waitedMs: number;
}

/**
 * File systems stamp mtimes from the kernel's coarse clock, which trails Date.now() by up to a
 * tick (4 ms at HZ=250, 10 ms at HZ=100): a file written right after the reference can carry a
 * time just before it.
 */
const MTIME_SLACK_MS = 20;

/** Between two looks: often enough to end soon after the settle time, rarely enough to cost nothing. */
export function pollInterval(settleMs: number): number {
  return Math.min(250, Math.max(50, Math.floor(settleMs / 4)));
}

/**
 * Resolves once at least `count` files matching the options' paths were modified at or after
 * `since` (epoch ms) and none of them has changed for the settle time. Lists with the
 * snapshot walk, so it sees exactly what a snapshot step would store: links inside a listed
 * directory are never followed, only regular files count. Rejects with the signal's reason
 * when it aborts. Reports progress each time what it sees changes.
 */
export async function waitForNewFiles(
  options: WaitOptions,
  since: number,
  signal: AbortSignal,
  onProgress: (progress: WaitProgress) => void,
  now: () => number = Date.now,
): Promise<WaitResult> {
  const started = now();
  const interval = pollInterval(options.settleMs);
  const seen = new Map<string, Seen>();
  let reported = '';
  for (;;) {
    signal.throwIfAborted();
    const { entries } = await walkPaths(options.paths, [], signal);
    const time = now();
    const current = new Map<string, Seen>();
    for (const entry of entries) {
      if (entry.type !== 'file' || entry.mtimeMs < since - MTIME_SLACK_MS) continue;
      const before = seen.get(entry.source);
      const same = before !== undefined && before.file.size === entry.size && before.file.mtimeMs === entry.mtimeMs && before.file.ino === entry.ino;
      current.set(entry.source, { file: entry, sameSince: same ? before.sameSince : time });
    }
    seen.clear();
    for (const [path, value] of current) seen.set(path, value);

    const settling = [...seen.values()].filter((value) => time - value.sameSince < options.settleMs).map((value) => value.file.source);
    const progress: WaitProgress = { seen: [...seen.keys()].sort(), settling: settling.sort() };
    const key = JSON.stringify(progress);
    if (key !== reported) {
      reported = key;
      onProgress(progress);
    }
    if (seen.size >= options.count && settling.length === 0) {
      const files = [...seen.values()]
        .map(({ file }) => ({ path: file.source, size: file.size, mtime: new Date(file.mtimeMs).toISOString() }))
        .sort((a, b) => a.path.localeCompare(b.path));
      return { files, waitedMs: time - started };
    }
    // Rejects with the signal's own reason (the step's deadline), not a generic AbortError.
    await sleep(interval, undefined, { signal }).catch(() => signal.throwIfAborted());
  }
}
