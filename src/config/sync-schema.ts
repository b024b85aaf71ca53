import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { formatDuration } from '../lib/duration.js';
import { showValue } from '../lib/format.js';
import { duration, httpUrl, jsonForms, positiveDuration } from './fields.js';

/** Without `settle:` (and without a marker), a checkpoint file counts as written once unchanged this long. */
export const DEFAULT_SETTLE_MS = 2000;

const PREFIXES: Record<string, number> = { '': 0, k: 1, m: 2, g: 3 };
/**
 * `50MB/s`, `20MiB/s`, `400Mbit/s`: bytes are `B`, bits `bit` (a lower-case `b` is refused:
 * bits to some, bytes to others). No `i` flag: the JSON Schema's pattern is this very source.
 */
const RATE = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?)(B|bit)\/s\s*$/;
const RATE_HINT = 'a rate with its unit such as 50MB/s, 20MiB/s or 400Mbit/s';

/** A bandwidth such as `50MB/s` or `400Mbit/s`, compiled to bytes per second; a bare number is refused (bytes or bits?). */
export function bandwidth() {
  const schema = z.union([z.string(), z.number()]).transform((value, ctx) => {
    if (typeof value === 'number') {
      ctx.addIssue({ code: 'custom', message: `got ${value}: a bare number is ambiguous (bytes or bits?): expected ${RATE_HINT}` });
      return z.NEVER;
    }
    const match = RATE.exec(value);
    const bytes = match ? (Number(match[1]) * (match[3] ? 1024 : 1000) ** PREFIXES[match[2]!.toLowerCase()]!) / (match[4] === 'bit' ? 8 : 1) : NaN;
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

/** Twice the chunk reuse window (src/snapshots/repository.ts): `snapshots prune` warns under it, a sync refuses it. */
const MIN_GRACE_MS = 2 * 60 * 60_000;

/**
 * `retention:` of a sync entry: the prune the agent runs after its commits (docs/snapshot.md,
 * "Retention"). `grace` is left unset here when not given: the prune's default applies.
 */
const syncRetentionSchema = z
  .strictObject({
    keepLast: z.number().int().min(0, { message: 'expected a whole number of snapshots, 0 or more' }).optional(),
    keepWithin: positiveDuration().optional(),
    grace: positiveDuration()
      .refine((ms) => ms >= MIN_GRACE_MS, { error: (issue) => `got ${showValue(formatDuration(Number(issue.input)))}: expected 2h or more: a shorter grace may delete chunks a commit running now relies on` })
      .optional(),
  })
  .refine((value) => value.keepLast !== undefined || value.keepWithin !== undefined, { message: 'expected a policy: keepLast and/or keepWithin (e.g. keepLast: 3)' })
  .transform(({ keepLast, keepWithin, grace }) => ({ keepLast, keepWithinMs: keepWithin, graceMs: grace }));

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
    retention: syncRetentionSchema.optional(),
  })
  .transform(({ settle, marker, interval, bandwidth: cap, retention, ...rest }) => ({
    ...rest,
    settleMs: settle ?? (marker ? 0 : DEFAULT_SETTLE_MS),
    marker: marker ?? null,
    intervalMs: interval ?? null,
    bytesPerSecond: cap ?? null,
    retention: retention ?? null,
  }));

export type SyncEntry = z.output<typeof syncEntrySchema>;

/** `sync:`: a mapping of names (what a snapshot step's `sync:` says) to entries. */
export const syncSectionSchema = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: 'expected a name of letters, digits, ".", "_" or "-"' }),
  syncEntrySchema,
);
