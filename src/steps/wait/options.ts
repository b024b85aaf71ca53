import { z } from 'zod';
import { duration } from '../../config/fields.js';
import { DEFAULT_SETTLE_MS } from '../../config/sync-schema.js';
import { formatDuration } from '../../lib/duration.js';

/** What a wait step waits for: `count` new files matching `paths`, unchanged for `settleMs`. */
export interface WaitOptions {
  /** Files and globs, as a snapshot's `paths`: what the workload writes. */
  paths: string[];
  /** `files`: settle-based; `marker`: the file the workload writes last (settle 0). */
  mode: 'files' | 'marker';
  /** How long every new file must stay unchanged (size and mtime) before the wait ends. */
  settleMs: number;
  /** How many new files must be there. */
  count: number;
}

const pathList = (what: string) =>
  z
    .union([z.string(), z.array(z.string())], { message: `expected ${what}: a path or glob, or a list of them` })
    .transform((value) => (typeof value === 'string' ? [value] : value))
    .pipe(
      z
        .array(z.string().trim().startsWith('/', { message: 'expected an absolute path or glob (starting with /)' }))
        .min(1, { message: `expected at least one ${what}` }),
    );

export const waitSchema = z
  .strictObject({
    files: pathList('checkpoint files').optional(),
    marker: pathList('marker files').optional(),
    settle: duration().optional(),
    count: z.number({ message: 'expected a whole number of files, at least 1' }).int({ message: 'expected a whole number' }).min(1, { message: 'expected at least 1' }).default(1),
  })
  .superRefine((raw, ctx) => {
    if ((raw.files === undefined) === (raw.marker === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: raw.files
          ? 'got files and marker: expected one of them (files: wait until they stop changing; marker: wait for the file written last)'
          : 'expected files (checkpoint files that must stop changing) or marker (a file the workload writes when done)',
      });
    }
    if (raw.marker !== undefined && raw.settle !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['settle'], message: 'a marker is written when the checkpoint is done: drop settle, or wait on files instead' });
    }
  })
  .transform(
    (raw): WaitOptions =>
      raw.marker !== undefined
        ? { paths: raw.marker, mode: 'marker', settleMs: 0, count: raw.count }
        : { paths: raw.files ?? [], mode: 'files', settleMs: raw.settle ?? DEFAULT_SETTLE_MS, count: raw.count },
  );

/** `2 new files matching /ckpt/*.pt, unchanged for 2s` — for dry runs, progress and timeouts. */
export function describeWait(options: WaitOptions): string {
  const what = `${options.count === 1 ? 'a new file' : `${options.count} new files`} matching ${options.paths.join(', ')}`;
  return options.mode === 'marker' ? `${what} (a marker)` : `${what}, unchanged for ${formatDuration(options.settleMs)}`;
}
