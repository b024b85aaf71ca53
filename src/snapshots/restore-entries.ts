import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, open, rename, rm, symlink, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import { runningChecksum } from './checksum.js';
import type { Manifest, ManifestFile } from './manifest.js';
import type { ChecksumAlgorithm } from './options.js';
import type { RestoreTally } from './restore-tally.js';

/** An entry not restored: wrong size or checksum, missing, unreadable, or refused. */
export interface Failure {
  path: string;
  reason: string;
}

/** How entries are written under the restore directory. */
export interface EntryWriter {
  /** The restore directory, its real path (no link in it). */
  target: string;
  checksum: ChecksumAlgorithm;
  /** Keep setuid and setgid bits (`--keep-setuid`); dropped by default. */
  keepSetuid: boolean;
  /** Aborts every write (Ctrl-C); the partial file is removed. */
  signal: AbortSignal;
  /** Counts what is written, for the progress shown. */
  tally: RestoreTally;
}

const SETID_BITS = 0o6000;

/** The absolute path of a manifest path under `target`; refuses anything that would leave it. */
export function insideTarget(target: string, path: string): string {
  const full = resolve(target, path);
  if (path.startsWith('/') || path.split('/').includes('..') || !full.startsWith(target + sep)) {
    throw new PreemptdError('ERR_RESTORE', `manifest path ${JSON.stringify(path)} would leave the restore directory`);
  }
  return full;
}

/** Thrown for an entry that cannot be placed without following a link; the restore goes on. */
class Refused extends Error {}

/**
 * Creates the directories above `path` one by one, never through a link: a manifest's own
 * links (`a/b/c -> ..`, then `a/b/c/d -> ../..`) could otherwise carry a later entry out of
 * the restore directory. Returns the entry's absolute path.
 */
async function placeFor(target: string, path: string): Promise<string> {
  const full = insideTarget(target, path);
  let at = target;
  for (const part of relative(target, dirname(full)).split(sep).filter(Boolean)) {
    at = join(at, part);
    // mkdir never follows a link in the last component; what exists already is looked at.
    const made = await mkdir(at).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST') return false;
        throw error;
      },
    );
    if (made) continue;
    const info = await lstat(at);
    if (info.isSymbolicLink()) throw new Refused(`${relative(target, at)} is a symbolic link: not followed`);
    else if (!info.isDirectory()) throw new Refused(`${relative(target, at)} is not a directory`);
  }
  return full;
}

/**
 * Bytes gathered before one writev: a few chunks or stream pieces a call. A loop over the
 * body with one file handle instead of a pipeline of three transforms into a write stream
 * (fewer stream hops, callbacks and garbage a piece), with chunk pieces no longer joined and
 * S3's direct GETs (stores/s3-direct.ts), took the restore bench from 5.3-6.2 to 3.5 CPU-s/GB.
 * A piece of this size or more is written before the next is asked for: a body may lend such
 * pieces (restore-chunks.ts).
 */
export const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * Writes every byte of `pieces`, however the kernel splits the writes. A write refused (a full
 * disk, a file size limit) is the file's failure, not a download's: the reason says which.
 */
async function writeAll(handle: FileHandle, pieces: Buffer[], file: ManifestFile): Promise<Failure | undefined> {
  let rest = pieces;
  try {
    while (rest.length > 0) {
      let written = (await handle.writev(rest)).bytesWritten;
      while (rest.length > 0 && written >= rest[0]!.length) {
        written -= rest[0]!.length;
        rest = rest.slice(1);
      }
      if (written > 0) rest = [rest[0]!.subarray(written), ...rest.slice(1)];
    }
  } catch (error) {
    return { path: file.path, reason: `cannot write it: ${errorMessage(error)}` };
  }
  return undefined;
}

/**
 * Writes the file's bytes next to its destination, checks size and checksum, then renames it
 * into place. `openBody` is called only once the destination is known to be safe: a refused
 * entry opens nothing (an opened store object would hold a descriptor or a connection). At
 * most `size` + 1 bytes are read: one more than the manifest says fails the file there.
 */
export async function writeVerified(
  openBody: () => Promise<Readable | AsyncIterable<Buffer>>,
  file: ManifestFile,
  writer: EntryWriter,
): Promise<Failure | undefined> {
  let destination: string;
  try {
    destination = await placeFor(writer.target, file.path);
  } catch (error) {
    if (error instanceof Refused) return { path: file.path, reason: error.message };
    throw error;
  }
  const partial = partialFor(destination);
  const running = runningChecksum(writer.checksum);
  let size = 0;
  try {
    // What a killed restore left there goes first; 'wx' then never writes through a link planted there.
    await rm(partial, { force: true });
    const handle = await open(partial, 'wx');
    try {
      const body = await openBody();
      // A stalled download ends at Ctrl-C; a generator's own fetches stop with the store's signal.
      const source: AsyncIterable<Buffer> = body instanceof Readable ? addAbortSignal(writer.signal, body) : body;
      let batch: Buffer[] = [];
      let batched = 0;
      for await (const piece of source) {
        writer.signal.throwIfAborted();
        size += piece.length;
        if (size > file.size) return { path: file.path, reason: `larger than the manifest's ${file.size} bytes: stopped there` };
        running.update(piece);
        writer.tally.fetched(piece.length);
        batch.push(piece);
        batched += piece.length;
        if (batched < WRITE_BATCH_BYTES) continue;
        const failure = await writeAll(handle, batch, file);
        if (failure) return failure;
        batch = [];
        batched = 0;
      }
      const failure = await writeAll(handle, batch, file);
      if (failure) return failure;
    } finally {
      await handle.close();
    }
    const got = running.digest();
    if (size !== file.size) return { path: file.path, reason: `size ${size}, manifest says ${file.size}` };
    if (got !== file[writer.checksum]) return { path: file.path, reason: `${writer.checksum} ${got}, manifest says ${file[writer.checksum]}` };
    await chmod(partial, writer.keepSetuid ? file.mode : file.mode & ~SETID_BITS);
    await utimes(partial, new Date(file.mtime), new Date(file.mtime));
    await rename(partial, destination);
    return undefined;
  } finally {
    await rm(partial, { force: true });
  }
}

/**
 * The temporary name a file is written under before it is verified and renamed: derived from
 * its name, so the temporary file a restore killed mid-write (kill -9) leaves is replaced and
 * removed by the next restore of that file instead of staying forever.
 */
export function partialFor(destination: string): string {
  return join(dirname(destination), `.${createHash('sha256').update(basename(destination)).digest('hex').slice(0, 8)}.partial`);
}

/** Recreates links whose target stays inside `target`; returns those pointing outside and those refused. */
export async function restoreLinks(manifest: Manifest, target: string): Promise<{ outside: string[]; refused: Failure[] }> {
  const outside: string[] = [];
  const refused: Failure[] = [];
  for (const entry of manifest.files) {
    if (entry.type !== 'symlink') continue;
    const path = insideTarget(target, entry.path);
    const pointsTo = resolve(dirname(path), entry.target);
    if (entry.target.startsWith('/') || !pointsTo.startsWith(target + sep)) {
      outside.push(entry.path);
      continue;
    }
    try {
      await placeFor(target, entry.path);
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      refused.push({ path: entry.path, reason: error.message });
      continue;
    }
    // The parents are real directories inside `target`: this removes the entry itself only.
    await rm(path, { force: true });
    await symlink(entry.target, path);
  }
  return { outside, refused };
}
