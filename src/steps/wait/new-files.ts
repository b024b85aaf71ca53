import { setTimeout as sleep } from 'node:timers/promises';
import { SettleWatch } from '../../snapshots/settle.js';
import { walkPaths, type FoundFile } from '../../snapshots/walk.js';
import type { WaitOptions } from './options.js';

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
  const watch = new SettleWatch(options.settleMs);
  let reported = '';
  for (;;) {
    signal.throwIfAborted();
    const { entries } = await walkPaths(options.paths, [], signal);
    const time = now();
    const { settled, settling } = watch.look(
      entries.filter((entry): entry is FoundFile => entry.type === 'file' && entry.mtimeMs >= since - MTIME_SLACK_MS),
      time,
    );
    const seen = [...settled, ...settling];
    const progress: WaitProgress = { seen: seen.map((file) => file.source).sort(), settling: settling.map((file) => file.source).sort() };
    const key = JSON.stringify(progress);
    if (key !== reported) {
      reported = key;
      onProgress(progress);
    }
    if (seen.length >= options.count && settling.length === 0) {
      const files = seen
        .map((file) => ({ path: file.source, size: file.size, mtime: new Date(file.mtimeMs).toISOString() }))
        .sort((a, b) => a.path.localeCompare(b.path));
      return { files, waitedMs: time - started };
    }
    // Rejects with the signal's own reason (the step's deadline), not a generic AbortError.
    await sleep(interval, undefined, { signal }).catch(() => signal.throwIfAborted());
  }
}
