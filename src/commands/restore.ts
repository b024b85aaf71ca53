import { PreemptdError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { logFormatFor } from '../lib/log-text.js';
import { latestIsNewer } from '../snapshots/restore-if-newer.js';
import { RestoreTally } from '../snapshots/restore-tally.js';
import { restore, type RestoreOptions } from '../snapshots/restore.js';
import { locationArgument } from './location-arg.js';
import { RestoreProgress } from './restore-progress.js';

export interface RestoreArgs {
  from?: string;
  latest?: string;
  to: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  region?: string;
  concurrency: number;
  keepSetuid: boolean;
  json: boolean;
  ifNewer: boolean;
  logLevel: string;
  logFormat?: string;
}

/**
 * `preemptd restore`: downloads a snapshot and verifies every checksum, showing its progress
 * (a bar on a terminal, JSON lines otherwise or with --json). With --if-newer it first
 * compares latest.json with what `--to` holds and exits 0 without restoring when that is
 * as new (docs/recipes.md, "Restore at boot"). The first Ctrl-C
 * (or SIGTERM) stops every download and removes the partial files; the handlers stay until
 * that is done, so a second one cannot cut the clean-up short.
 */
export async function restoreCommand(args: RestoreArgs): Promise<void> {
  if (args.from === undefined && args.latest === undefined) throw new PreemptdError('ERR_USAGE', 'name the snapshot: --from LOCATION or --latest PREFIX');
  if (args.ifNewer && args.latest === undefined) throw new PreemptdError('ERR_USAGE', '--if-newer compares with latest.json: give --latest PREFIX');
  const flag = args.latest !== undefined ? '--latest' : '--from';
  const from = args.latest ?? args.from ?? '';
  locationArgument(flag, from);
  const tally = new RestoreTally();
  const progress = new RestoreProgress(tally, args.json || process.stderr.isTTY !== true ? 'json' : 'bar');
  const format = args.json && args.logFormat === undefined ? 'json' : logFormatFor(args.logFormat, process.stdout.isTTY === true);
  // Synchronous, so log lines and progress lines reach stdout in the order they were made.
  const log = createLogger({ level: args.logLevel as 'info', format, destination: progress.logDestination(), sync: true });
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log.warn({ signal }, 'restore interrupted: stopping downloads and removing partial files');
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const options: RestoreOptions = {
    from,
    latest: args.latest !== undefined,
    to: args.to,
    log,
    signal: controller.signal,
    endpoint: args.endpoint,
    forcePathStyle: args.forcePathStyle,
    region: args.region,
    concurrency: args.concurrency,
    keepSetuid: args.keepSetuid,
    tally,
  };
  try {
    if (args.ifNewer) {
      const verdict = await latestIsNewer(options);
      if (!verdict.restore) return progress.skipped(verdict.reason);
      log.info({ reason: verdict.reason }, 'the latest snapshot is newer than the restore directory: restoring');
    }
    progress.start();
    let ok = false;
    try {
      await restore(options);
      ok = true;
    } finally {
      progress.finish(ok);
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
