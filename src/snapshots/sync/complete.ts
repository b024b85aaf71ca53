import type { SyncEntry } from '../../config/sync-schema.js';
import { SettleWatch } from '../settle.js';
import { walkPaths, type FoundFile } from '../walk.js';

/**
 * File systems stamp mtimes from the kernel's coarse clock (a tick of up to 10 ms): a file
 * written just before its marker can carry a time just after the marker's.
 */
const MTIME_SLACK_MS = 20;

/**
 * Tells which checkpoint files are complete, with the wait step's semantics: unchanged for
 * the settle time (SettleWatch), and, when the sync names a marker, written at or before the
 * newest marker (the file the workload writes last).
 */
export class CheckpointWatch {
  private readonly settle: SettleWatch;

  constructor(private readonly entry: Pick<SyncEntry, 'settleMs' | 'marker'>) {
    this.settle = new SettleWatch(entry.settleMs);
  }

  /** How long to wait between looks: settle/2, from 250 ms to 5 s. */
  get lookInterval(): number {
    return Math.min(5000, Math.max(250, Math.floor(this.entry.settleMs / 2)));
  }

  async complete(files: readonly FoundFile[], time: number, signal: AbortSignal): Promise<FoundFile[]> {
    const { settled } = this.settle.look(files, time);
    if (!this.entry.marker) return settled;
    const markers = (await walkPaths(this.entry.marker, [], signal)).entries.filter((entry): entry is FoundFile => entry.type === 'file');
    if (markers.length === 0) return [];
    const newest = Math.max(...markers.map((marker) => marker.mtimeMs));
    return settled.filter((file) => file.mtimeMs <= newest + MTIME_SLACK_MS);
  }
}
