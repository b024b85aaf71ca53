import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { jsonBytes } from '../../lib/json-bytes.js';
import { writeFileAtomically } from '../../lib/write-atomically.js';
import { fileEntrySchema, type Manifest, type ManifestFile, type StoredChunk } from '../manifest.js';
import { chunkHome } from '../repository.js';
import type { FoundFile } from '../walk.js';

/** Still 1 with packs: a chunk without a pack (`[sha256, size]`) is the same stored chunk it was. */
const RECORD_VERSION = 1;
/** More files than any checkpoint tree has; past it the oldest entries are dropped (stored again if still there). */
export const MAX_RECORDED_FILES = 100_000;

const recordSchema = z.object({
  version: z.literal(RECORD_VERSION),
  /** The destination the chunks went to: a record of another one says nothing about this one. */
  to: z.string(),
  files: z.array(z.object({ source: z.string(), ino: z.number(), mtimeMs: z.number(), storedAt: z.number(), entry: fileEntrySchema })),
});

/** A stored file: the identity it had when read, and its manifest entry (chunks included, with where each is stored). */
interface Recorded {
  ino: number;
  mtimeMs: number;
  /** Epoch ms the file's chunks were stored (or found stored). */
  storedAt: number;
  entry: ManifestFile;
}

/**
 * What a sync has stored, kept in `stateDir/sync/<name>.json` so a restart never reads or
 * uploads it again: each file by path with the size, mtime and inode it had when read, and
 * its chunks with where each is stored. Written atomically after each batch; a record that
 * cannot be read is dropped with a warning (everything is read again: chunks the latest
 * manifest names are not sent again, others are).
 */
export class SyncRecord {
  private constructor(
    private readonly path: string,
    private readonly to: string,
    private readonly files: Map<string, Recorded>,
  ) {}

  static async open(stateDir: string, name: string, to: string, log: Logger): Promise<SyncRecord> {
    const dir = join(stateDir, 'sync');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${name}.json`);
    const files = new Map<string, Recorded>();
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ path, err: error }, 'cannot read the sync record: starting over');
      return new SyncRecord(path, to, files);
    }
    let problem: string | undefined;
    try {
      const parsed = recordSchema.safeParse(JSON.parse(text));
      if (!parsed.success) problem = `unexpected content: ${parsed.error.issues[0]?.message ?? 'invalid'}`;
      else if (parsed.data.to !== to) log.info({ path, was: parsed.data.to, now: to }, 'the sync destination changed: starting over');
      else for (const { source, ...recorded } of parsed.data.files) files.set(source, recorded);
    } catch (error) {
      problem = `not valid JSON (${errorMessage(error)})`;
    }
    if (problem) log.warn({ path, problem }, 'the sync record is corrupt: starting over (chunks the latest snapshot names are not sent again)');
    return new SyncRecord(path, to, files);
  }

  /** The manifest entry of `file` when it was stored as it is now (same size, mtime and inode). */
  stored(file: FoundFile): ManifestFile | undefined {
    const recorded = this.files.get(file.source);
    if (!recorded || recorded.ino !== file.ino || recorded.mtimeMs !== file.mtimeMs || recorded.entry.size !== file.size) return undefined;
    return { ...recorded.entry, path: file.name, mode: file.mode };
  }

  /** Every chunk a recorded file names, by SHA-256, with where it is stored. */
  chunks(): Map<string, StoredChunk> {
    return new Map([...this.files.values()].flatMap(({ entry }) => (entry.chunks ?? []).map((chunk) => [chunk[0], chunk] as const)));
  }

  /**
   * Whether `manifest` holds every recorded file with the same chunks, stored in the same place. When it does not, the
   * agent stopped between storing files and committing them (a kill -9 between the record's
   * save and the manifest, or before latest.json): they are committed on the first pass.
   */
  coveredBy(manifest: Manifest | undefined): boolean {
    if (this.files.size === 0) return true;
    if (manifest === undefined) return false;
    const committed = new Map(manifest.files.map((file) => [file.path, file.type === 'file' ? chunksOf(file) : undefined]));
    for (const { entry } of this.files.values()) if (committed.get(entry.path) !== chunksOf(entry)) return false;
    return true;
  }

  /** Whether a file was recorded before `time` (epoch ms). */
  hasStoredBefore(time: number): boolean {
    for (const recorded of this.files.values()) if (recorded.storedAt < time) return true;
    return false;
  }

  /**
   * Forgets files recorded before `time` unless `protectedChunks` names every chunk they name
   * in the same object (the pointer's manifest: prune keeps it and the packs and chunks it
   * names; a copy of the chunk elsewhere says nothing of the recorded one). Resolves to how many.
   */
  forgetUnprotected(time: number, protectedChunks: ReadonlyMap<string, StoredChunk>): number {
    let forgotten = 0;
    for (const [source, recorded] of this.files) {
      if (recorded.storedAt >= time || (recorded.entry.chunks ?? []).every((chunk) => isProtected(chunk, protectedChunks))) continue;
      this.files.delete(source);
      forgotten += 1;
    }
    return forgotten;
  }

  /** Records `entry` as what `file` stored at `storedAt`; a file changed while read is not recorded (it is read again). */
  remember(file: FoundFile, entry: ManifestFile, storedAt: number): void {
    if (entry.changed) return;
    this.files.delete(file.source);
    this.files.set(file.source, { ino: file.ino, mtimeMs: file.mtimeMs, storedAt, entry });
    for (const source of this.files.keys()) {
      if (this.files.size <= MAX_RECORDED_FILES) break;
      this.files.delete(source);
    }
  }

  /** Drops files no longer found, so the record stays the size of the tree. */
  keepOnly(found: readonly FoundFile[]): void {
    const present = new Set(found.map((file) => file.source));
    for (const source of this.files.keys()) if (!present.has(source)) this.files.delete(source);
  }

  async save(): Promise<void> {
    const files = [...this.files].map(([source, recorded]) => ({ source, ...recorded }));
    await writeFileAtomically(this.path, jsonBytes({ version: RECORD_VERSION, to: this.to, files }));
  }
}

/** The file's chunks with their homes, as one comparable string. */
function chunksOf(entry: ManifestFile): string {
  return JSON.stringify(entry.chunks ?? []);
}

function isProtected(chunk: StoredChunk, protectedChunks: ReadonlyMap<string, StoredChunk>): boolean {
  const named = protectedChunks.get(chunk[0]);
  return named !== undefined && chunkHome(named) === chunkHome(chunk);
}
