/** What /v1/status and the metrics show of one sync. */
export interface SyncStatus {
  name: string;
  to: string;
  /** Bytes per second it may send; null: no cap, or lifted (`capLifted`). */
  capBytesPerSecond: number | null;
  capLifted: boolean;
  /** Bytes sent to the store since the agent started. */
  bytesStored: number;
  /** Bytes of files read and hashed since the agent started (a file recorded as stored is not read again). */
  bytesRead: number;
  /** Files found that are not stored as they are now (complete or still being written). */
  backlogFiles: number;
  backlogBytes: number;
  /** Files read, cut and hashed to their end whose new chunks are not all stored yet (a plan each). */
  scannedFiles: number;
  /** Bytes of chunks those files still owe: what a notice now would send of them. */
  owedBytes: number;
  /** Epoch ms of the newest committed snapshot (the recovery point); null: none yet. */
  lastCommitAt: number | null;
  lastCommit: string | null;
  lastError: string | null;
  /** Epoch ms of the last prune its `retention:` ran; null: none yet (or no retention). */
  lastPruneAt: number | null;
  lastPruneError: string | null;
}
