import { z } from 'zod';

export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_VERSION = 1;

const fileEntry = z.object({
  type: z.literal('file'),
  /** Name in the snapshot, `/`-separated, relative; in files mode also the object key under the prefix. */
  path: z.string(),
  size: z.number().int().nonnegative(),
  mtime: z.string(),
  mode: z.number().int(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  changed: z.string().optional(),
});

const linkEntry = z.object({
  type: z.literal('symlink'),
  path: z.string(),
  target: z.string(),
});

export const manifestSchema = z.object({
  version: z.literal(MANIFEST_VERSION),
  mode: z.enum(['files', 'archive']),
  /** The checksum every file entry carries. */
  checksum: z.literal('sha256'),
  /** Archive mode: the one object holding every file. */
  archive: z
    .object({
      key: z.string(),
      compression: z.enum(['none', 'gzip', 'zstd']),
      /** Bytes of the stored object (compressed). */
      size: z.number().int().nonnegative(),
      sha256: z.string(),
    })
    .nullable(),
  notice: z.record(z.string(), z.unknown()),
  host: z.record(z.string(), z.unknown()),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** The step deadline the snapshot worked against. */
  deadline: z.string(),
  /** True when every file found was stored. */
  complete: z.boolean(),
  bytesWanted: z.number().int().nonnegative(),
  bytesDone: z.number().int().nonnegative(),
  files: z.array(z.discriminatedUnion('type', [fileEntry, linkEntry])),
  skipped: z.array(z.object({ path: z.string(), reason: z.string() })),
  /** Files and directories left out by `exclude`. */
  excluded: z.number().int().nonnegative(),
});

export type Manifest = z.output<typeof manifestSchema>;
export type ManifestEntry = Manifest['files'][number];
export type ManifestFile = Extract<ManifestEntry, { type: 'file' }>;
