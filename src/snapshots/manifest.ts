import { z } from 'zod';
import { CHECKSUMS, type ChecksumAlgorithm } from './options.js';

export const MANIFEST_NAME = 'manifest.json';
/** Written by this build; 1 (chunks stored one object each, before packs) still reads. */
export const MANIFEST_VERSION = 2;
const READABLE_VERSIONS = [1, 2] as const;

/** Checksums, each under its algorithm's name; the manifest's `checksum` says which one every entry has. */
const checksumFields = {
  sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'expected 64 hex digits' }).optional(),
  crc32: z.string().regex(/^[0-9a-f]{8}$/, { message: 'expected 8 hex digits' }).optional(),
};

/**
 * The largest chunk a manifest may name: 8 times the largest any chunker cut (2 MiB, v1). Restore holds
 * each chunk in memory to verify it before writing, so a crafted size must not go further.
 */
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * The largest pack a manifest may name a range of: 8 times the packer's target (repository.ts
 * PACK_TARGET_BYTES), so a crafted offset cannot ask for a range past any pack written.
 */
export const MAX_PACK_BYTES = 64 * 1024 * 1024;

const sha256Field = z.string().regex(/^[0-9a-f]{64}$/, { message: 'expected a SHA-256: 64 lower-case hex digits' });
const chunkSize = z.number().int().positive().max(MAX_CHUNK_BYTES, { message: `a chunk of at most ${MAX_CHUNK_BYTES} bytes (no chunker cuts larger)` });

/**
 * A chunk of a file in dedup mode: its SHA-256 and its length, then where it is stored: the
 * pack's id and the chunk's offset in it (`packs/<id>`, repository.ts). Without the last two
 * (manifest version 1) the chunk is its own object, `chunks/ab/<sha256>`.
 */
const chunkRef = z.union([
  z.tuple([sha256Field, chunkSize]),
  z
    .tuple([
      sha256Field,
      chunkSize,
      z.string().regex(/^[0-9a-f]{24}$/, { message: 'expected a pack id: 24 lower-case hex digits' }),
      z.number().int().nonnegative({ message: 'expected an offset in the pack: a whole number, 0 or more' }),
    ])
    .refine(([, size, , offset]) => offset + size <= MAX_PACK_BYTES, { message: `a range inside a pack of at most ${MAX_PACK_BYTES} bytes` }),
]);

/** One chunk a dedup manifest names, with where it is stored. */
export type StoredChunk = z.output<typeof chunkRef>;

export const fileEntrySchema = z.object({
  type: z.literal('file'),
  /** Name in the snapshot, `/`-separated, relative; in files mode also the object key under the prefix. */
  path: z.string(),
  size: z.number().int().nonnegative(),
  mtime: z.string(),
  mode: z.number().int(),
  ...checksumFields,
  changed: z.string().optional(),
  /** Dedup mode: the file's chunks in order, as `[sha256, size, pack, offset]` (`[sha256, size]` in version 1). */
  chunks: z.array(chunkRef).optional(),
});

const linkEntry = z.object({
  type: z.literal('symlink'),
  path: z.string(),
  target: z.string(),
});

export const manifestSchema = z
  .object({
    version: z.union(READABLE_VERSIONS.map((version) => z.literal(version))),
    mode: z.enum(['files', 'archive', 'dedup']),
    /** Dedup mode: the chunker that cut the files (chunker.ts's CHUNKER_VERSION). */
    chunker: z.string().optional(),
    /** The checksum every file entry (and the archive) carries. */
    checksum: z.enum(CHECKSUMS),
    /** Archive mode: the one object holding every file. */
    archive: z
      .object({
        key: z.string(),
        compression: z.enum(['none', 'gzip', 'zstd']),
        /** Bytes of the stored object (compressed). */
        size: z.number().int().nonnegative(),
        ...checksumFields,
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
    files: z.array(z.discriminatedUnion('type', [fileEntrySchema, linkEntry])),
    skipped: z.array(z.object({ path: z.string(), reason: z.string() })),
    /** Files and directories left out by `exclude`. */
    excluded: z.number().int().nonnegative(),
  })
  .superRefine((manifest, ctx) => {
    const missing = `missing: the manifest's checksum is ${manifest.checksum}`;
    manifest.files.forEach((entry, index) => {
      if (entry.type === 'file' && entry[manifest.checksum] === undefined) ctx.addIssue({ code: 'custom', path: ['files', index, manifest.checksum], message: missing });
    });
    if (manifest.archive && manifest.archive[manifest.checksum] === undefined) ctx.addIssue({ code: 'custom', path: ['archive', manifest.checksum], message: missing });
    if (manifest.mode !== 'dedup') return;
    // Restore trusts the chunk list to rebuild the file: its sizes must add up to the file's.
    manifest.files.forEach((entry, index) => {
      if (entry.type !== 'file') return;
      if (!entry.chunks) ctx.addIssue({ code: 'custom', path: ['files', index, 'chunks'], message: 'missing: every file of a dedup manifest lists its chunks' });
      else if (entry.chunks.reduce((sum, [, size]) => sum + size, 0) !== entry.size) ctx.addIssue({ code: 'custom', path: ['files', index, 'chunks'], message: `chunk sizes do not add up to the file's size ${entry.size}` });
    });
  });

/** `{ crc32: value }` or `{ sha256: value }`: where a checksum made with `algorithm` goes in an entry. */
export function checksumField(algorithm: ChecksumAlgorithm, value: string): Partial<Record<ChecksumAlgorithm, string>> {
  return { [algorithm]: value };
}

export type Manifest = z.output<typeof manifestSchema>;
export type ManifestEntry = Manifest['files'][number];
export type ManifestFile = Extract<ManifestEntry, { type: 'file' }>;
