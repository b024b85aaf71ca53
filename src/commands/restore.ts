import { createLogger } from '../lib/log.js';
import { restore } from '../snapshots/restore.js';

export interface RestoreArgs {
  from: string;
  to: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  region?: string;
  concurrency: number;
  logLevel: string;
}

/** `preemptd restore`: downloads a snapshot and verifies every checksum; Ctrl-C stops it. */
export async function restoreCommand(args: RestoreArgs): Promise<void> {
  const log = createLogger({ level: args.logLevel as 'info' });
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await restore({
      from: args.from,
      to: args.to,
      log,
      signal: controller.signal,
      endpoint: args.endpoint,
      forcePathStyle: args.forcePathStyle,
      region: args.region,
      concurrency: args.concurrency,
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
