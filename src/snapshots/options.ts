import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { duration, httpUrl } from '../config/fields.js';
import { showValue } from '../lib/format.js';
import { parseLocation } from '../stores/location.js';
import { PLACEHOLDERS, fillPlaceholders } from './placeholders.js';

export const PRIORITIES = ['newest', 'oldest', 'smallest', 'largest', 'path'] as const;
export type Priority = (typeof PRIORITIES)[number];

/**
 * What the manifest gives each file (checksum.ts computes them and says what each costs).
 * Listed here, away from the native CRC32 module, which loads with the first snapshot only.
 */
export const CHECKSUMS = ['crc32', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUMS)[number];

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
const MIB = 1024 * 1024;

/** A byte count such as `16MiB`, `8MB` or a bare number of bytes. */
function byteSize() {
  return z.union([z.string(), z.number()]).transform((value, ctx) => {
    const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i.exec(value.trim()) : null;
    const bytes = typeof value === 'number' ? value : match ? Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]! : NaN;
    if (!Number.isSafeInteger(Math.round(bytes)) || bytes <= 0) {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: expected a size such as 16MiB, 8MB or a number of bytes` });
      return z.NEVER;
    }
    return Math.round(bytes);
  });
}

function absolutePath(what: string) {
  return z.string().refine(isAbsolute, { error: (issue) => `got ${showValue(issue.input)}: ${what} must be an absolute path` });
}

/** `to:` with its placeholders checked now, so a typo fails at start-up and not in the notice window. */
function destination() {
  return z.string().superRefine((value, ctx) => {
    const unknown = [...value.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((name) => !(PLACEHOLDERS as readonly string[]).includes(name));
    if (unknown.length) {
      ctx.addIssue({ code: 'custom', message: `unknown placeholder {${unknown[0]}}: expected one of ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}` });
      return;
    }
    try {
      parseLocation(fillPlaceholders(value, { instanceId: 'i', noticeId: 'n', hostname: 'h', timestamp: 't', kind: 'k' }));
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: ${(error as Error).message}` });
    }
  });
}

/**
 * The `snapshot:` step options. Part size, parts and files in flight, measured on the 2 GiB
 * loopback bench (docs/snapshot.md): 8 MiB parts peaked at 174 MB RSS where 16 MiB parts
 * reached 200-205 MB, for 660 against 677-701 MB/s, within the noise of a shared machine.
 * 4 parts of each file in flight: fewer changed nothing on loopback, but one S3 connection
 * carries far less than a VM's NIC, so a single big checkpoint needs several. 4 files at once:
 * 1 file at a time was slower with lib-storage (10.8-11.6 s against 8.6-9.3 s); with our
 * uploader 1 file (677 MB/s) and 2 files of 2 parts (681 MB/s) matched 4 of 4 within the
 * noise, and more files in flight keep a link busy while small files start and finish.
 */
export const snapshotOptionsSchema = z
  .strictObject({
    /** Without `sync:`: what to store, and where. With it, the sync's paths and destination are used. */
    paths: z.array(absolutePath('a snapshot path')).min(1, { message: 'list at least one file, directory or glob' }).optional(),
    exclude: z.array(z.string().min(1)).default([]),
    to: destination().optional(),
    /** A background sync (top-level `sync:`): store only what it has not stored yet, then commit. */
    sync: z.string().min(1).optional(),
    /** files unless the snapshot is tied to a sync (dedup). */
    mode: z.enum(['files', 'archive', 'dedup'], { message: 'expected files, archive or dedup' }).optional(),
    compression: z.enum(['none', 'gzip', 'zstd'], { message: 'expected none, gzip or zstd' }).default('none'),
    priority: z.enum(PRIORITIES, { message: `expected one of ${PRIORITIES.join(', ')}` }).default('newest'),
    /** The manifest's checksum of every file (checksum.ts says what each costs). */
    checksum: z.enum(CHECKSUMS, { message: `expected one of ${CHECKSUMS.join(', ')}` }).default('crc32'),
    endpoint: httpUrl().optional(),
    forcePathStyle: z.boolean().default(false),
    region: z.string().min(1).optional(),
    concurrency: z.number().int().min(1).max(64).default(4),
    partSize: byteSize()
      .refine((bytes) => bytes >= 5 * MIB, { message: 'expected at least 5MiB (the S3 minimum part size)' })
      .default(8 * MIB),
    queueSize: z.number().int().min(1).max(64).default(4),
    /** Time kept back before the step deadline to abort transfers and write the manifest. */
    reserve: duration().default(2000),
    progressInterval: duration().default(3000),
  })
  .superRefine((options, ctx) => {
    if (options.sync !== undefined) {
      for (const key of ['paths', 'to', 'exclude'] as const) {
        if (key in options && (key !== 'exclude' || options.exclude.length > 0)) {
          ctx.addIssue({ code: 'custom', path: [key], message: `a snapshot tied to sync ${options.sync} stores the sync's paths to its destination: drop ${key}` });
        }
      }
      if (options.mode !== undefined && options.mode !== 'dedup') ctx.addIssue({ code: 'custom', path: ['mode'], message: 'a snapshot tied to a sync stores in dedup mode: drop mode' });
      if (options.checksum !== 'crc32') ctx.addIssue({ code: 'custom', path: ['checksum'], message: "a snapshot tied to a sync keeps the sync's checksum, crc32: drop checksum" });
    } else {
      if (options.paths === undefined) ctx.addIssue({ code: 'custom', path: ['paths'], message: 'expected paths: files, directories or globs to store (or sync: a background sync)' });
      if (options.to === undefined) ctx.addIssue({ code: 'custom', path: ['to'], message: 'expected to: where to store them, such as s3://bucket/prefix/ (or sync: a background sync)' });
    }
    if (options.mode !== 'archive' && options.compression !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['compression'], message: 'compression applies to mode: archive only' });
    }
  })
  .transform(({ paths, to, sync, mode, ...rest }) => {
    const common = { ...rest, mode: mode ?? (sync === undefined ? 'files' : 'dedup') };
    // superRefine above made sure a snapshot has paths and to, or a sync.
    return sync === undefined ? { ...common, paths: paths!, to: to!, sync: null } : { ...common, paths: null, to: null, sync };
  });

export type SnapshotOptions = z.output<typeof snapshotOptionsSchema>;
