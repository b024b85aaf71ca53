import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { showValue } from '../lib/format.js';
import { duration, httpUrl, jsonForms, positiveDuration } from './fields.js';

/** Without `settle:` (and without a marker), a checkpoint file counts as written once unchanged this long. */
export const DEFAULT_SETTLE_MS = 2000;

const RATE_UNITS: Record<string, number> = {
  'b/s': 1,
  'kb/s': 1e3,
  'mb/s': 1e6,
  'gb/s': 1e9,
  'kib/s': 1024,
  'mib/s': 1024 ** 2,
  'gib/s': 1024 ** 3,
  'kbit/s': 1e3 / 8,
  'mbit/s': 1e6 / 8,
  'gbit/s': 1e9 / 8,
};
const RATE = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b(?:it)?\/s)\s*$/i;
const RATE_HINT = 'a rate with its unit such as 50MB/s, 20MiB/s or 400Mbit/s';

/** A bandwidth such as `50MB/s` or `400Mbit/s`, compiled to bytes per second; a bare number is refused (bytes or bits?). */
export function bandwidth() {
  const schema = z.union([z.string(), z.number()]).transform((value, ctx) => {
    if (typeof value === 'number') {
      ctx.addIssue({ code: 'custom', message: `got ${value}: a bare number is ambiguous (bytes or bits?): expected ${RATE_HINT}` });
      return z.NEVER;
    }
    const match = RATE.exec(value);
    const factor = match ? RATE_UNITS[match[2]!.toLowerCase()] : undefined;
    const bytes = match && factor ? Number(match[1]) * factor : NaN;
    if (!(bytes >= 1)) {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: expected ${RATE_HINT}` });
      return z.NEVER;
    }
    return Math.round(bytes);
  });
  jsonForms.add(schema, { description: RATE_HINT, type: 'string', pattern: RATE.source });
  return schema;
}

const globList = (what: string) =>
  z
    .union([z.string(), z.array(z.string())], { message: `expected ${what}: an absolute path or glob, or a list of them` })
    .transform((value) => (typeof value === 'string' ? [value] : value))
    .pipe(
      z
        .array(z.string().refine(isAbsolute, { error: (issue) => `got ${showValue(issue.input)}: expected an absolute path or glob (starting with /)` }))
        .min(1, { message: `expected at least one ${what}` }),
    );

const DESTINATION = /^(s3|gs|az|file):\/\//;

/**
 * One entry of `sync:` (docs/snapshot.md, "Background sync"): what to store while the VM is
 * healthy, where (a dedup repository), when a checkpoint file counts as complete (the wait
 * step's semantics: unchanged for `settle`, and/or a `marker` written at or after it), how
 * often to commit, and the bandwidth it may use.
 */
export const syncEntrySchema = z
  .strictObject({
    paths: globList('checkpoint path'),
    exclude: z.array(z.string().min(1)).default([]),
    to: z.string().superRefine((value, ctx) => {
      if (!DESTINATION.test(value)) ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: expected s3://, gs://, az:// or file:// and a prefix` });
      const placeholder = /\{(?!hostname\})[^}]*\}/.exec(value);
      if (placeholder) ctx.addIssue({ code: 'custom', message: `got ${placeholder[0]}: a sync runs before any notice, so only {hostname} can be filled in` });
    }),
    settle: duration().optional(),
    marker: globList('marker file').optional(),
    interval: positiveDuration().optional(),
    bandwidth: bandwidth().optional(),
    endpoint: httpUrl().optional(),
    forcePathStyle: z.boolean().default(false),
    region: z.string().min(1).optional(),
  })
  .transform(({ settle, marker, interval, bandwidth: cap, ...rest }) => ({
    ...rest,
    settleMs: settle ?? (marker ? 0 : DEFAULT_SETTLE_MS),
    marker: marker ?? null,
    intervalMs: interval ?? null,
    bytesPerSecond: cap ?? null,
  }));

export type SyncEntry = z.output<typeof syncEntrySchema>;

/** `sync:`: a mapping of names (what a snapshot step's `sync:` says) to entries. */
export const syncSectionSchema = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: 'expected a name of letters, digits, ".", "_" or "-"' }),
  syncEntrySchema,
);
