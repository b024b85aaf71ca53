/** What a restore has done so far, read by whoever shows its progress (the restore command). */
export interface RestoreFigures {
  /** Files (regular files) the manifest lists, and their bytes. */
  filesTotal: number;
  bytesTotal: number;
  /** Files downloaded, verified and renamed into place. */
  filesRestored: number;
  /** Files already in place with the manifest's content (warm restore): not downloaded. */
  filesPresent: number;
  filesFailed: number;
  /** Bytes downloaded from the store (a failed file's too). */
  bytesFetched: number;
  /** Bytes of the files already in place. */
  bytesReused: number;
  /** Milliseconds since the restore started (Date.now() based). */
  elapsedMs: number;
}

/**
 * The counters a restore updates as it goes. The restore only counts; the command decides
 * how often to show them (a bar on a terminal, JSON lines otherwise).
 */
export class RestoreTally {
  filesTotal = 0;
  bytesTotal = 0;
  filesRestored = 0;
  filesPresent = 0;
  filesFailed = 0;
  bytesFetched = 0;
  bytesReused = 0;
  readonly startedAt: number;

  constructor(now = Date.now()) {
    this.startedAt = now;
  }

  fetched = (bytes: number): void => {
    this.bytesFetched += bytes;
  };

  figures(now = Date.now()): RestoreFigures {
    const { filesTotal, bytesTotal, filesRestored, filesPresent, filesFailed, bytesFetched, bytesReused } = this;
    return { filesTotal, bytesTotal, filesRestored, filesPresent, filesFailed, bytesFetched, bytesReused, elapsedMs: now - this.startedAt };
  }
}
