import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, rename, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { measuringStream } from './checksum.js';
import type { ChecksumAlgorithm } from './options.js';
import { MANIFEST_NAME, manifestSchema, type Manifest, type ManifestFile } from './manifest.js';
import { formatLocation, keyFor, parseLocation, type StoreLocation } from '../stores/location.js';
import { openStore } from '../stores/registry.js';
import type { ObjectStore } from '../stores/types.js';

export interface RestoreOptions {
  /** The snapshot's location (the step's `to:` with placeholders filled), or its manifest.json URL. */
  from: string;
  /** Directory to restore into; created when missing. */
  to: string;
  log: Logger;
  signal: AbortSignal;
  endpoint?: string | undefined;
  forcePathStyle?: boolean | undefined;
  region?: string | undefined;
  /** Files downloaded at once (files mode). */
  concurrency?: number;
}

export interface RestoreResult {
  files: number;
  links: number;
  bytes: number;
  /** Links not recreated because they point outside `to`. */
  linksSkipped: string[];
  manifest: Manifest;
}

/** A file that failed verification: wrong size or checksum, missing, unreadable. */
interface Failure {
  path: string;
  reason: string;
}

/**
 * Downloads a snapshot into `to` and verifies every file's size and checksum against the
 * manifest. A file is renamed into place only once verified; a mismatch fails the restore
 * (ERR_RESTORE) naming every bad file. Links are recreated when they stay inside `to`.
 */
export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const location = parseLocation(options.from.replace(new RegExp(`${MANIFEST_NAME}$`), ''));
  const target = resolve(options.to);
  const store = await openStore(location, {
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    region: options.region,
    partSize: 8 * 1024 * 1024,
    queueSize: 1,
    concurrency: options.concurrency ?? 4,
    signal: options.signal,
    log: options.log,
  });
  try {
    const manifest = await readManifest(store, location);
    const where = formatLocation(location);
    if (!manifest.complete) {
      options.log.warn({ from: where, skipped: manifest.skipped.length }, `the snapshot is incomplete: ${manifest.skipped.length} files were not stored when it was taken`);
    }
    for (const entry of manifest.files) insideTarget(target, entry.path);
    await mkdir(target, { recursive: true });

    const files = manifest.files.filter((entry): entry is ManifestFile => entry.type === 'file');
    const failures =
      manifest.mode === 'files'
        ? await restoreFiles(store, location, manifest.checksum, files, target, options.concurrency ?? 4)
        : await restoreArchive(store, location, manifest, target);
    const linksSkipped = await restoreLinks(manifest, target);
    for (const path of linksSkipped) options.log.warn({ path }, 'link not restored: it points outside the restore directory');
    if (failures.length) {
      const list = failures.map((failure) => `  ${failure.path}: ${failure.reason}`).join('\n');
      throw new PreemptdError('ERR_RESTORE', `restore from ${where}: ${failures.length} of ${files.length} files failed verification:\n${list}`);
    }
    const result = {
      files: files.length,
      links: manifest.files.length - files.length - linksSkipped.length,
      bytes: files.reduce((sum, file) => sum + file.size, 0),
      linksSkipped,
      manifest,
    };
    options.log.info({ from: where, to: target, files: result.files, links: result.links, bytes: result.bytes }, 'restore finished; every checksum verified');
    return result;
  } finally {
    await store.close();
  }
}

async function readManifest(store: ObjectStore, location: StoreLocation): Promise<Manifest> {
  const where = `${formatLocation(location)}${MANIFEST_NAME}`;
  let text: string;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await store.get(keyFor(location, MANIFEST_NAME))) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  } catch (error) {
    throw new PreemptdError('ERR_RESTORE', `cannot read ${where}: ${errorMessage(error)}`, { cause: error });
  }
  let parsed;
  try {
    parsed = manifestSchema.safeParse(JSON.parse(text));
  } catch {
    throw new PreemptdError('ERR_RESTORE', `${where} is not JSON`);
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PreemptdError('ERR_RESTORE', `${where} is not a preemptd manifest: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/** The absolute path of a manifest path under `target`; refuses anything that would leave it. */
function insideTarget(target: string, path: string): string {
  const full = resolve(target, path);
  if (path.startsWith('/') || path.split('/').includes('..') || !full.startsWith(target + sep)) {
    throw new PreemptdError('ERR_RESTORE', `manifest path ${JSON.stringify(path)} would leave the restore directory`);
  }
  return full;
}

async function restoreFiles(
  store: ObjectStore,
  location: StoreLocation,
  checksum: ChecksumAlgorithm,
  files: ManifestFile[],
  target: string,
  concurrency: number,
): Promise<Failure[]> {
  const failures: Failure[] = [];
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      try {
        const failure = await writeVerified(await store.get(keyFor(location, file.path)), file, checksum, target);
        if (failure) failures.push(failure);
      } catch (error) {
        failures.push({ path: file.path, reason: `download failed: ${errorMessage(error)}` });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, files.length)) }, worker));
  return failures;
}

/** Writes `body` next to its destination, checks size and checksum, then renames it into place. */
async function writeVerified(body: Readable | AsyncIterable<Buffer>, file: ManifestFile, checksum: ChecksumAlgorithm, target: string): Promise<Failure | undefined> {
  const destination = insideTarget(target, file.path);
  await mkdir(dirname(destination), { recursive: true });
  const partial = join(dirname(destination), `.${randomBytes(4).toString('hex')}.partial`);
  const measure = measuringStream(checksum);
  try {
    await pipeline(body, measure.stream, createWriteStream(partial));
    const got = measure.digest();
    const size = measure.bytes();
    if (size !== file.size) return { path: file.path, reason: `size ${size}, manifest says ${file.size}` };
    if (got !== file[checksum]) return { path: file.path, reason: `${checksum} ${got}, manifest says ${file[checksum]}` };
    await chmod(partial, file.mode);
    await utimes(partial, new Date(file.mtime), new Date(file.mtime));
    await rename(partial, destination);
    return undefined;
  } finally {
    await rm(partial, { force: true });
  }
}

async function restoreArchive(store: ObjectStore, location: StoreLocation, manifest: Manifest, target: string): Promise<Failure[]> {
  const archive = manifest.archive;
  if (!archive) return [];
  const tar = await import('tar-stream');
  const wanted = new Map(manifest.files.filter((entry): entry is ManifestFile => entry.type === 'file').map((file) => [file.path, file]));
  const failures: Failure[] = [];
  const measure = measuringStream(manifest.checksum);
  const extract = tar.extract();
  const body = await store.get(keyFor(location, archive.key));
  const decompress = archive.compression === 'gzip' ? createGunzip() : archive.compression === 'zstd' ? createZstdDecompress() : new PassThrough();
  const unpacking = pipeline(body, measure.stream, decompress, extract);
  // Its error also ends the loop below; it is awaited after.
  unpacking.catch(() => undefined);
  for await (const entry of extract) {
    const file = wanted.get(entry.header.name);
    if (entry.header.type !== 'file' || !file) {
      entry.resume();
      continue;
    }
    wanted.delete(file.path);
    // A streamx stream: async iterable at runtime, though its types do not say so.
    const failure = await writeVerified(entry as unknown as AsyncIterable<Buffer>, file, manifest.checksum, target);
    if (failure) failures.push(failure);
  }
  await unpacking;
  if (measure.digest() !== archive[manifest.checksum]) failures.push({ path: archive.key, reason: `archive ${manifest.checksum} does not match the manifest` });
  for (const path of wanted.keys()) failures.push({ path, reason: 'missing from the archive' });
  return failures;
}

/** Recreates links whose target stays inside `target`; returns the paths of the others. */
async function restoreLinks(manifest: Manifest, target: string): Promise<string[]> {
  const skipped: string[] = [];
  for (const entry of manifest.files) {
    if (entry.type !== 'symlink') continue;
    const path = insideTarget(target, entry.path);
    const pointsTo = resolve(dirname(path), entry.target);
    if (entry.target.startsWith('/') || !pointsTo.startsWith(target + sep)) {
      skipped.push(entry.path);
      continue;
    }
    await mkdir(dirname(path), { recursive: true });
    await rm(path, { force: true });
    await symlink(entry.target, path);
  }
  return skipped;
}
