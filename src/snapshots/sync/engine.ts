import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncEntry } from '../../config/sync-schema.js';
import { errorMessage } from '../../lib/errors.js';
import type { HostFacts } from '../../lib/host.js';
import type { Logger } from '../../lib/log.js';
import { parseLocation, type StoreLocation } from '../../stores/location.js';
import { openStore } from '../../stores/registry.js';
import type { ObjectStore } from '../../stores/types.js';
import type { ManifestEntry, ManifestFile, StoredChunk } from '../manifest.js';
import { orderEntries } from '../order.js';
import { fillPlaceholders } from '../placeholders.js';
import { TransferProgress } from '../progress.js';
import { FileReader } from '../read.js';
import { readLatest } from '../repository.js';
import { planEntry, type ScanPlan } from '../scan-plan.js';
import type { UploadOutcome } from '../upload.js';
import { walkPaths, type FoundEntry, type FoundFile } from '../walk.js';
import { commitSynced } from './commit.js';
import { CheckpointWatch } from './complete.js';
import type { OwedOutcome } from './owed.js';
import { ScanPlans } from './plans.js';
import { PruneSchedule } from './prune-schedule.js';
import { SyncRecord } from './record.js';
import { RecordTrust } from './record-trust.js';
import { PACKS_IN_FLIGHT_PER_FILE, FILES_IN_FLIGHT, PART_SIZE, payOwed, scanFiles, type PassIO } from './scan.js';
import type { SyncStatus } from './status.js';
import { TokenBucket } from './token-bucket.js';

export type { SyncStatus };

/** The lowest CPU priority: the sync reads and hashes only when the workload leaves a core idle. */
const SYNC_NICE = 19;
const FAILED_PASS_PAUSE_MS = 10_000;

/**
 * One background sync (docs/snapshot.md, "Background sync"): finds complete checkpoint files,
 * stores the chunks the repository lacks under the bandwidth cap at low CPU priority, records
 * what it stored in stateDir, and commits a complete manifest after each checkpoint (or every
 * `interval`). A file's read is not paced: what the cap holds back is owed and sent later by
 * range reads (ScanPlans, owed.ts). A snapshot step tied to it asks which files are stored or
 * scanned (split) and tells it what the notice stored (remember, settle).
 */
export class SyncEngine {
  private readonly bucket: TokenBucket;
  private readonly watch: CheckpointWatch;
  private readonly location: StoreLocation;
  private wake = new AbortController();
  private bytesStored = 0;
  private bytesRead = 0;
  private backlog = { files: 0, bytes: 0 };
  private lastCommit: { at: number; name: string } | null = null;
  private lastError: string | null = null;
  /** Set when stored files changed since the last commit. */
  private uncommitted = false;
  private releaseFlush: (() => void) | undefined;
  /** Notice-time snapshots doing the sync's work now (takeOver); background passes wait for them. */
  private takers = 0;
  /** Stops the background pass in flight. */
  private passStop = new AbortController();
  private readonly trust: RecordTrust;
  private readonly plans = new ScanPlans();

  private constructor(
    readonly name: string,
    readonly entry: SyncEntry,
    private readonly host: HostFacts,
    private readonly log: Logger,
    private readonly record: SyncRecord,
    private readonly store: ObjectStore,
    private readonly reader: FileReader,
    private readonly retention: PruneSchedule | null,
  ) {
    this.bucket = new TokenBucket(entry.bytesPerSecond);
    this.watch = new CheckpointWatch(entry);
    this.location = parseLocation(this.destination);
    this.trust = new RecordTrust(record, store, this.location, log);
  }

  /** Opens the record and the store; `signal` stops every transfer; no prune while `inNotice()` (a notice is handled). */
  static async open(name: string, entry: SyncEntry, deps: { stateDir: string; host: HostFacts; log: Logger; signal: AbortSignal; inNotice?: () => boolean }): Promise<SyncEngine> {
    const log = deps.log.child({ sync: name });
    const to = destinationOf(entry, deps.host);
    const record = await SyncRecord.open(deps.stateDir, name, to, log);
    const store = await openStore(parseLocation(to), {
      endpoint: entry.endpoint,
      forcePathStyle: entry.forcePathStyle,
      region: entry.region,
      partSize: PART_SIZE,
      queueSize: PACKS_IN_FLIGHT_PER_FILE,
      concurrency: FILES_IN_FLIGHT,
      signal: deps.signal,
      log,
    });
    const retention = entry.retention && new PruneSchedule(entry.retention, store, parseLocation(to), log, deps.inNotice ?? (() => false));
    return new SyncEngine(name, entry, deps.host, log, record, store, FileReader.start({ nice: SYNC_NICE }), retention);
  }

  get destination(): string {
    return destinationOf(this.entry, this.host);
  }

  /** Runs passes until `signal` aborts; a failed pass is logged and the next one tries again. */
  async run(signal: AbortSignal): Promise<void> {
    const latest = await readLatest(this.store, this.location).catch(() => undefined);
    if (latest) this.lastCommit = { at: Date.parse(latest.manifest.finishedAt), name: latest.name };
    // Files stored before a crash but never committed are committed by the first pass.
    this.uncommitted = !this.record.coveredBy(latest?.manifest);
    this.log.info({ to: this.store.url, capBytesPerSecond: this.entry.bytesPerSecond }, 'background sync started');
    while (!signal.aborted) {
      if (this.takers === 0) {
        this.passStop = new AbortController();
        try {
          await this.pass(AbortSignal.any([signal, this.passStop.signal]));
          this.lastError = null;
        } catch (error) {
          if (signal.aborted) break;
          if (!this.passStop.signal.aborted) {
            this.lastError = errorMessage(error);
            this.log.warn({ err: error }, 'sync pass failed; trying again');
          }
        }
      }
      if (this.backlog.files === 0) this.endFlush();
      const wake = AbortSignal.any([signal, this.wake.signal]);
      // After a failure (a store that does not answer), wait longer: one warning every 10 s at most.
      const pause = this.lastError === null ? this.watch.lookInterval : FAILED_PASS_PAUSE_MS;
      await sleep(pause, undefined, { signal: wake }).catch(() => undefined);
      if (this.wake.signal.aborted) this.wake = new AbortController();
    }
  }

  /** An advisory notice: lifts the cap and starts a pass now; the cap returns once nothing is left. */
  flush(): void {
    this.releaseFlush ??= this.bucket.lift();
    this.wake.abort();
  }

  /**
   * A notice-time snapshot does the sync's work until the returned function is called: the cap
   * is lifted and the background pass in flight stops (no file is read twice in the window;
   * chunks it already stored are found in the store), and no new pass starts.
   */
  takeOver(): () => void {
    const releaseCap = this.bucket.lift();
    this.takers += 1;
    this.passStop.abort();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      releaseCap();
      this.takers -= 1;
      if (this.takers === 0) this.wake.abort();
    };
  }

  /** A notice-time snapshot committed `name`: the recovery point moves. */
  committed(name: string): void {
    this.lastCommit = { at: Date.now(), name };
    this.uncommitted = false;
  }

  status(): SyncStatus {
    return {
      name: this.name,
      to: this.store.url,
      capBytesPerSecond: this.bucket.cap,
      capLifted: this.bucket.cap === null && this.entry.bytesPerSecond !== null,
      bytesStored: this.bytesStored,
      bytesRead: this.bytesRead,
      backlogFiles: this.backlog.files,
      backlogBytes: this.backlog.bytes,
      ...this.plans.status(),
      lastCommitAt: this.lastCommit?.at ?? null,
      lastCommit: this.lastCommit?.name ?? null,
      lastError: this.lastError,
      ...(this.retention?.status() ?? { lastPruneAt: null, lastPruneError: null }),
    };
  }

  /**
   * Splits what a notice-time snapshot found, keeping its order: files stored as they are now
   * (their entries), files scanned with chunks still owed (their plans: sendOwed), and the rest.
   */
  split(entries: readonly FoundEntry[]): { stored: ManifestFile[]; planned: ScanPlan[]; toStore: FoundEntry[] } {
    return this.plans.split(entries, (file) => this.record.stored(file));
  }

  /** Records the files whose plans `owed` completed (the notice's, or a pass's), forgets those done or broken, and saves the record. */
  async settle(owed: OwedOutcome): Promise<void> {
    for (const plan of owed.done) this.record.remember(plan.file, planEntry(plan), plan.scannedAt);
    this.plans.drop([...owed.done, ...owed.broken]);
    this.uncommitted ||= owed.done.length > 0;
    await this.record.save();
  }

  knownChunks(): Map<string, StoredChunk> {
    return this.record.chunks();
  }

  /** Records what an upload started at `startedAt` stored (the notice's, or a pass's), and saves the record. */
  async remember(entries: readonly FoundEntry[], outcome: UploadOutcome, bytesSent: number, startedAt: number): Promise<void> {
    this.bytesStored += bytesSent;
    const byName = new Map(entries.map((entry) => [entry.name, entry]));
    for (const file of outcome.files) {
      const found = byName.get(file.path);
      if (file.type === 'file' && found?.type === 'file') this.record.remember(found, file, startedAt);
    }
    await this.record.save();
  }

  /** A notice is being handled: the running prune, if any, stops now (none starts until it is handled). */
  stopPrune(why: string): void {
    this.retention?.stop(why);
  }

  async close(): Promise<void> {
    this.endFlush();
    await this.retention?.close();
    await Promise.all([this.store.close(), this.reader.close()]);
  }

  private endFlush(): void {
    this.releaseFlush?.();
    this.releaseFlush = undefined;
  }

  /** One look: store what is complete and not stored, then commit when due. */
  private async pass(signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    const found = await walkPaths(this.entry.paths, this.entry.exclude, signal);
    const files = found.entries.filter((entry): entry is FoundFile => entry.type === 'file');
    await this.trust.check();
    const complete = await this.watch.complete(files, Date.now(), signal);
    const pending = complete.filter((file) => !this.record.stored(file));
    this.measureBacklog(files);
    this.record.keepOnly(files);
    this.plans.keepOnly(pending);
    if (pending.length > 0) {
      // Scan ahead first: every pending file read to its end; then what the cap held back.
      const unplanned = pending.filter((file) => !this.plans.holding(file));
      const outcome = unplanned.length > 0 ? await this.upload(unplanned, signal) : { files: [], skipped: [] };
      const owed = await this.sendOwed(pending, signal);
      for (const skipped of [...outcome.skipped, ...owed.skipped]) this.log.warn(skipped, 'sync could not store a file; it is tried again');
      this.uncommitted ||= outcome.files.length > 0;
      this.measureBacklog(files);
    }
    // Taken over by a notice-time snapshot: it commits.
    signal.throwIfAborted();
    const due = this.entry.intervalMs === null || this.lastCommit === null || Date.now() - this.lastCommit.at >= this.entry.intervalMs;
    if (!this.uncommitted || !due) return;
    const stored: ManifestEntry[] = complete.flatMap((file) => this.record.stored(file) ?? []);
    // None complete yet (the first look after a restart sees nothing settled): an empty
    // manifest would only hide the last good one from restore --latest.
    if (stored.length === 0) return;
    const name = await commitSynced(this.store, this.location, { name: this.name, host: this.host, startedAt, files: stored, found });
    this.lastCommit = { at: Date.now(), name };
    this.uncommitted = false;
    this.log.info({ manifest: name, files: stored.length }, 'sync committed a snapshot');
    void this.retention?.afterCommit();
  }

  private measureBacklog(files: readonly FoundFile[]): void {
    const left = files.filter((file) => !this.record.stored(file));
    this.backlog = { files: left.length, bytes: left.reduce((sum, file) => sum + file.size, 0) };
  }

  private io(signal: AbortSignal): PassIO {
    return { store: this.store, location: this.location, reader: this.reader, bucket: this.bucket, signal };
  }

  private async upload(pending: FoundFile[], signal: AbortSignal): Promise<UploadOutcome> {
    const startedAt = Date.now();
    const entries = orderEntries(pending, 'newest');
    const progress = new TransferProgress(pending.reduce((sum, file) => sum + file.size, 0));
    const outcome = await scanFiles(entries, this.record.chunks(), progress, this.io(signal));
    this.bytesRead += outcome.bytesDone + (outcome.planned ?? []).reduce((sum, plan) => sum + plan.entry.size, 0);
    this.plans.add(outcome.planned ?? []);
    await this.remember(entries, outcome, progress.bytesSent, startedAt);
    return outcome;
  }

  /** Sends what the plans of `files` owe, newest file first, at the cap's pace. */
  private async sendOwed(files: FoundFile[], signal: AbortSignal): Promise<OwedOutcome> {
    const plans = orderEntries(files, 'newest').flatMap((file) => (file.type === 'file' && this.plans.holding(file)) || []);
    const progress = new TransferProgress(0);
    const owed = await payOwed(plans, progress, this.io(signal));
    this.bytesRead += owed.bytesRead;
    this.bytesStored += progress.bytesSent;
    await this.settle(owed);
    return owed;
  }
}

/** The sync's destination with `{hostname}` filled in (the only placeholder known before a notice). */
function destinationOf(entry: SyncEntry, host: HostFacts): string {
  return fillPlaceholders(entry.to, { hostname: host.hostname });
}
