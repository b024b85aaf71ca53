import type { SyncStatus } from '../daemon/syncs.js';
import { Counter, Gauge, type Registry } from './prom-client.js';

/** The recovery point: how old the newest committed snapshot is, what a VM dying now without a notice loses. */
function recoveryPointAgeSeconds(sync: SyncStatus, now: number): number | null {
  return sync.lastCommitAt === null ? null : Math.max(0, (now - sync.lastCommitAt) / 1000);
}

/** What /v1/status shows of each background sync: progress, backlog, cap and the recovery point. */
export function syncView(statuses: readonly SyncStatus[], now = Date.now()) {
  return statuses.map((sync) => ({
    name: sync.name,
    to: sync.to,
    recoveryPointAgeSeconds: recoveryPointAgeSeconds(sync, now),
    lastCommit: sync.lastCommit,
    lastCommitAt: sync.lastCommitAt === null ? null : new Date(sync.lastCommitAt).toISOString(),
    bytesStored: sync.bytesStored,
    bytesRead: sync.bytesRead,
    backlogFiles: sync.backlogFiles,
    backlogBytes: sync.backlogBytes,
    scannedFiles: sync.scannedFiles,
    owedBytes: sync.owedBytes,
    capBytesPerSecond: sync.capBytesPerSecond,
    capLifted: sync.capLifted,
    lastError: sync.lastError,
    lastPruneAt: sync.lastPruneAt === null ? null : new Date(sync.lastPruneAt).toISOString(),
    lastPruneError: sync.lastPruneError,
  }));
}

/** The syncs' gauges, read from the daemon at scrape time (labelled by sync name). */
export function registerSyncMetrics(registers: Registry[], statuses: () => readonly SyncStatus[]): void {
  const gauge = (name: string, help: string, value: (sync: SyncStatus, now: number) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['sync'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const sync of statuses()) {
          const figure = value(sync, now);
          if (figure !== null) this.set({ sync: sync.name }, figure);
        }
      },
    });
  gauge('preemptd_sync_recovery_point_age_seconds', 'Age of the newest snapshot a background sync committed: what a VM dying now without a notice would lose.', recoveryPointAgeSeconds);
  gauge('preemptd_sync_backlog_bytes', 'Bytes of files found that a background sync has not stored as they are now.', (sync) => sync.backlogBytes);
  gauge('preemptd_sync_backlog_files', 'Files found that a background sync has not stored as they are now.', (sync) => sync.backlogFiles);
  gauge('preemptd_sync_scanned_files', 'Files a background sync has read and hashed to their end whose new chunks are not all stored yet.', (sync) => sync.scannedFiles);
  gauge('preemptd_sync_owed_bytes', 'Bytes of new chunks those scanned files still owe: what a notice now would send of them.', (sync) => sync.owedBytes);
  gauge('preemptd_sync_cap_bytes_per_second', 'The bandwidth cap in force (absent: none, or lifted by a notice).', (sync) => sync.capBytesPerSecond);
  const reported = new Map<string, number>();
  new Counter({
    name: 'preemptd_sync_bytes_stored_total',
    help: 'Bytes a background sync (or a snapshot tied to it) sent to its store.',
    labelNames: ['sync'],
    registers,
    collect() {
      for (const sync of statuses()) {
        this.inc({ sync: sync.name }, sync.bytesStored - (reported.get(sync.name) ?? 0));
        reported.set(sync.name, sync.bytesStored);
      }
    },
  });
}
