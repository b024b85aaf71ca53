import { dirname } from 'node:path';
import picomatch from 'picomatch';
import { directoryExists } from '../checks.js';
import type { StepType } from '../types.js';
import { describeWait, waitSchema, type WaitOptions } from './options.js';
import { waitForNewFiles } from './new-files.js';

/** Without `timeout:`, the time a checkpoint gets to appear, besides its settle time. */
export const WAIT_DEFAULT_TIMEOUT_MS = 30_000;

/** Where the files will appear: the directory a check can look for. */
function parentDirectory(path: string): string {
  const scan = picomatch.scan(path);
  return scan.isGlob ? scan.base : dirname(path);
}

/**
 * Waits until the workload has finished writing: a signal step is `ok` once the signal is
 * delivered, long before a checkpoint is on disk, so a snapshot right after it would store the
 * previous one. "New" means modified since the step this one follows (`after:`) started.
 */
export const waitStep = {
  type: 'wait',
  schema: waitSchema,
  destructive: false,
  // Leaves a 2-minute window room for the snapshot after it; a slower writer needs `timeout:`.
  defaultTimeoutMs: (options) => options.settleMs + WAIT_DEFAULT_TIMEOUT_MS,
  describe: (options) => `wait for ${describeWait(options)}, written since the step it follows started`,
  async run(options, context) {
    const since = context.followsStartedAt;
    context.progress({ waitingFor: describeWait(options), since: new Date(since).toISOString() });
    const result = await waitForNewFiles(options, since, context.signal, (progress) => context.progress({ ...progress }));
    return { files: result.files, waitedMs: result.waitedMs };
  },
  async check(options) {
    const directories = [...new Set(options.paths.map(parentDirectory))];
    return Promise.all(directories.map((directory) => directoryExists(directory)));
  },
} satisfies StepType<WaitOptions>;
