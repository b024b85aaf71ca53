import type { FoundFile } from './walk.js';

/**
 * Tells which files have stopped changing: each listing is compared with the one before, and
 * a file counts as settled once its size, mtime and inode have stayed the same for `settleMs`.
 * The wait step and the background sync both decide "the checkpoint is written" with it.
 */
export class SettleWatch {
  /** Each file last seen, and since when (epoch ms) it has looked the same. */
  private seen = new Map<string, { file: FoundFile; sameSince: number }>();

  constructor(private readonly settleMs: number) {}

  /** Takes the files listed at `time`; forgets those no longer listed. */
  look(files: readonly FoundFile[], time: number): { settled: FoundFile[]; settling: FoundFile[] } {
    const current = new Map<string, { file: FoundFile; sameSince: number }>();
    for (const file of files) {
      const before = this.seen.get(file.source);
      const same = before !== undefined && before.file.size === file.size && before.file.mtimeMs === file.mtimeMs && before.file.ino === file.ino;
      current.set(file.source, { file, sameSince: same ? before.sameSince : time });
    }
    this.seen = current;
    const settled: FoundFile[] = [];
    const settling: FoundFile[] = [];
    for (const { file, sameSince } of current.values()) (time - sameSince >= this.settleMs ? settled : settling).push(file);
    return { settled, settling };
  }
}
