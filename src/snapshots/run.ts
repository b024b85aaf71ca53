import { errorMessage, StepFailure } from '../lib/errors.js';
import { noticeToJSON } from '../notice/notice.js';
import type { HostFacts } from '../lib/host.js';
import type { Logger } from '../lib/log.js';
import type { Notice } from '../notice/notice.js';
import { parseLocation } from '../stores/location.js';
import { openStore } from '../stores/registry.js';
import type { ObjectStore } from '../stores/types.js';
import { CHUNKER_VERSION } from './chunker.js';
import { uploadFiles } from './files-mode.js';
import { MANIFEST_NAME, MANIFEST_VERSION, type Manifest, type ManifestEntry } from './manifest.js';
import type { SnapshotOptions } from './options.js';
import { orderEntries } from './order.js';
import { fillPlaceholders, placeholderValues } from './placeholders.js';
import { TransferProgress } from './progress.js';
import { chunkingThreads, FileReader } from './read.js';
import { commitSnapshot, snapshotName, writeJson } from './repository.js';
import { owedBytes, planEntry } from './scan-plan.js';
import { deadlineGate, type UploadJob, type UploadOutcome } from './upload.js';
import { sendOwed, type OwedOutcome } from './sync/owed.js';
import { runningSync } from './sync/registry.js';
import { walkPaths, type FoundEntry } from './walk.js';

/** What a snapshot needs of the step running it (a step's context has all of it). */
export interface SnapshotContext {
  readonly notice: Notice;
  readonly host: HostFacts;
  readonly log: Logger;
  /** Aborted at the step deadline: every transfer stops. */
  readonly signal: AbortSignal;
  /** Epoch ms by which the snapshot must be done. */
  readonly deadline: number;
  progress(detail: Record<string, unknown>): void;
}

type SnapshotDetail = Record<string, unknown>;

/**
 * Runs one snapshot: find the files, upload them in priority order until the cut-off
 * (`reserve` before the step deadline), clean up unfinished uploads, then write the manifest
 * of what completed. Fails (with the manifest written) when anything wanted was not stored.
 */
export async function runSnapshot(options: SnapshotOptions, context: SnapshotContext): Promise<SnapshotDetail> {
  const startedAt = Date.now();
  const sync = options.sync === null ? undefined : runningSync(options.sync);
  const source = options.sync === null ? options : sync ? { ...sync.entry, to: sync.destination } : undefined;
  if (!source) throw new StepFailure(`sync ${options.sync} is not running: the daemon starts the syncs of the sync: section once it watches`);
  const location = parseLocation(fillPlaceholders(source.to, placeholderValues(context.notice, context.host)));
  // Never keep back more than a quarter of a short budget.
  const cutoff = context.deadline - Math.min(options.reserve, Math.max(0, context.deadline - startedAt) / 4);

  const cut = new AbortController();
  const cutTimer = setTimeout(() => cut.abort(), Math.max(0, cutoff - Date.now()));
  const onStepAbort = () => cut.abort();
  context.signal.addEventListener('abort', onStepAbort, { once: true });
  const stopCutting = () => {
    clearTimeout(cutTimer);
    context.signal.removeEventListener('abort', onStepAbort);
  };

  // Listing runs while the store's SDK loads; both count against the budget, and the walk
  // stops at the cut-off so the manifest can still be written in the reserve.
  const walking = walkPaths(source.paths, source.exclude, cut.signal);
  let store: ObjectStore;
  try {
    store = await openStore(location, {
      endpoint: source.endpoint,
      forcePathStyle: source.forcePathStyle,
      region: source.region ?? context.notice.instance.region,
      partSize: options.partSize,
      queueSize: options.queueSize,
      concurrency: options.concurrency,
      signal: context.signal,
      log: context.log,
    });
  } catch (error) {
    cut.abort();
    stopCutting();
    throw error;
  }
  const found = await walking;
  const entries = orderEntries(found.entries, options.priority);
  const bytesWanted = fileBytes(entries);
  // Tied to a sync: what it stored is in the manifest as it is, files it scanned send only
  // the chunks they owe, and only the rest is read.
  const { stored, planned, toStore } = sync ? sync.split(entries) : { stored: [], planned: [], toStore: entries };
  const progress = new TransferProgress(fileBytes(toStore) + planned.reduce((sum, plan) => sum + owedBytes(plan), 0));
  const releaseSync = sync?.takeOver();
  const report = () => {
    const figures = progress.report(context.deadline);
    context.log.info(figures, 'snapshot progress');
    context.progress(figures);
  };
  const reporter = setInterval(report, options.progressInterval);
  context.log.info(
    { to: store.url, mode: options.mode, files: entries.length, bytesWanted, cutoffInMs: Math.round(cutoff - startedAt) },
    'snapshot started',
  );

  const reader = FileReader.start({ threads: options.mode === 'dedup' ? chunkingThreads(options.concurrency) : 1 });
  let outcome: UploadOutcome;
  let owed: OwedOutcome | undefined;
  let manifest: Manifest;
  try {
    const gate = deadlineGate(cut.signal, cutoff, progress);
    if (sync && planned.length > 0) {
      owed = await sendOwed({ plans: planned, reader, store, location, stop: cut.signal, progress, gate, concurrency: options.concurrency * options.queueSize });
      await sync.settle(owed).catch((error: unknown) => context.log.warn({ err: error }, 'could not record what the snapshot stored in the sync record'));
    }
    // A file that changed since its scan is read whole, in its place in the order.
    const rest = owed?.broken.length ? orderEntries([...toStore, ...owed.broken.map((plan) => plan.file)], options.priority) : toStore;
    const job: UploadJob = {
      entries: rest,
      store,
      location,
      stop: cut.signal,
      progress,
      gate,
      concurrency: options.concurrency,
      partSize: options.partSize,
      queueSize: options.queueSize,
      reader,
      checksum: options.checksum,
      ...(sync ? { knownChunks: sync.knownChunks() } : {}),
    };
    outcome =
      options.mode === 'files'
        ? await uploadFiles(job)
        : options.mode === 'dedup'
          ? await (await import('./dedup-mode.js')).uploadDeduplicated(job)
          : await (await import('./archive-mode.js')).uploadArchive(job, options.compression);
    stopCutting();
    clearInterval(reporter);
    await sync?.remember(rest, outcome, progress.bytesSent, startedAt).catch((error: unknown) => context.log.warn({ err: error }, 'could not record what the snapshot stored in the sync record'));
    const left = await store.cleanup();
    const fromPlans = owed?.done.map(planEntry) ?? [];
    const skipped = [...found.skipped, ...(owed?.skipped ?? []), ...outcome.skipped, ...left.map((key) => ({ path: key, reason: 'unfinished upload could not be removed' }))];
    manifest = {
      version: MANIFEST_VERSION,
      mode: options.mode,
      checksum: options.checksum,
      archive: outcome.archive,
      ...(options.mode === 'dedup' ? { chunker: CHUNKER_VERSION } : {}),
      notice: noticeToJSON(context.notice),
      host: { ...context.host },
      startedAt: new Date(startedAt).toISOString(),
      finishedAt: new Date().toISOString(),
      deadline: new Date(context.deadline).toISOString(),
      complete: skipped.length === 0,
      bytesWanted,
      bytesDone: outcome.bytesDone + fileBytes(stored) + fileBytes(fromPlans),
      files: [...stored, ...fromPlans, ...outcome.files].sort((a, b) => (a.path < b.path ? -1 : 1)),
      skipped,
      excluded: found.excluded,
    };
    const name = options.mode === 'dedup' ? snapshotName(startedAt, context.notice.id) : MANIFEST_NAME;
    try {
      await (options.mode === 'dedup' ? commitSnapshot(store, location, name, manifest) : writeJson(store, location, name, manifest));
      if (manifest.complete) sync?.committed(name);
    } catch (error) {
      // A manifest put cut by the step deadline leaves its partial upload: remove it too.
      await store.cleanup();
      throw new StepFailure(`snapshot to ${store.url}: could not write ${name}: ${errorMessage(error)}`, summary(manifest));
    }
  } finally {
    stopCutting();
    clearInterval(reporter);
    releaseSync?.();
    await Promise.all([store.close(), reader.close()]);
  }

  const seconds = (Date.now() - startedAt) / 1000;
  const detail = { to: store.url, ...summary(manifest), bytesSent: progress.bytesSent, bytesRead: reader.bytesRead, mbPerSecond: Number((manifest.bytesDone / 1e6 / seconds).toFixed(1)) };
  context.log.info(detail, 'snapshot finished');
  if (!manifest.complete) {
    const stored = manifest.files.filter((file) => file.type === 'file').length;
    const first = manifest.skipped[0]!;
    throw new StepFailure(
      `snapshot to ${store.url} incomplete: stored ${stored} files, ${manifest.bytesDone} of ${manifest.bytesWanted} bytes; ` +
        `${manifest.skipped.length} skipped (first: ${first.path}: ${first.reason})`,
      detail,
    );
  }
  return detail;
}

function fileBytes(entries: readonly (FoundEntry | ManifestEntry)[]): number {
  return entries.reduce((sum, entry) => sum + (entry.type === 'file' ? entry.size : 0), 0);
}

function summary(manifest: Manifest): SnapshotDetail {
  return {
    mode: manifest.mode,
    files: manifest.files.length,
    skipped: manifest.skipped.length,
    bytesDone: manifest.bytesDone,
    bytesWanted: manifest.bytesWanted,
    complete: manifest.complete,
  };
}
