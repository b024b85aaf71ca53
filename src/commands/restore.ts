import { PreemptdError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { logFormatFor } from '../lib/log-text.js';
import { restore } from '../snapshots/restore.js';
import { locationArgument } from './location-arg.js';

export interface RestoreArgs {
  from?: string;
  latest?: string;
  to: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  region?: string;
  concurrency: number;
  keepSetuid: boolean;
  logLevel: string;
  logFormat?: string;
}

/**
 * `preemptd restore`: downloads a snapshot and verifies every checksum. The first Ctrl-C
 * (or SIGTERM) stops every download and removes the partial files; the handlers stay until
 * that is done, so a second one cannot cut the clean-up short.
 */
export async function restoreCommand(args: RestoreArgs): Promise<void> {
  if (args.from === undefined && args.latest === undefined) throw new PreemptdError('ERR_USAGE', 'name the snapshot: --from LOCATION or --latest PREFIX');
  const flag = args.latest !== undefined ? '--latest' : '--from';
  const from = args.latest ?? args.from ?? '';
  locationArgument(flag, from);
  const log = createLogger({ level: args.logLevel as 'info', format: logFormatFor(args.logFormat, process.stdout.isTTY === true) });
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log.warn({ signal }, 'restore interrupted: stopping downloads and removing partial files');
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await restore({
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
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
