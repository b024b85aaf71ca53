import { mkdir, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { measuringStream } from './checksum.js';
import { MANIFEST_NAME, manifestSchema, type Manifest, type ManifestFile } from './manifest.js';
import { insideTarget, restoreLinks, WRITE_BATCH_BYTES, writeVerified, type EntryWriter, type Failure } from './restore-entries.js';
import { RequestBuffers } from './restore-buffers.js';
import { formatLocation, keyFor, parseLocation, type StoreLocation } from '../stores/location.js';
import { readLatest } from './repository.js';
import { alreadyPresent, chunkedBody, REQUESTS_AHEAD, type ChunkReading } from './restore-chunks.js';
import { FileReader } from './read.js';
import { writeMarker } from './restore-marker.js';
import { checkRoom } from './restore-room.js';
import { RestoreTally } from './restore-tally.js';
import { readStoredJson } from './stored-json.js';
import { openStore } from '../stores/registry.js';
import type { ObjectStore } from '../stores/types.js';

export interface RestoreOptions {
  /**
   * The snapshot's location (the step's `to:` with placeholders filled), or its manifest.json
   * URL; with `latest`, a dedup repository's prefix.
   */
  from: string;
  /** Restore the snapshot `latest.json` under `from` names (dedup mode). */
  latest?: boolean;
  /** Directory to restore into; created when missing. */
  to: string;
  log: Logger;
  signal: AbortSignal;
  endpoint?: string | undefined;
  forcePathStyle?: boolean | undefined;
  region?: string | undefined;
  /** Files downloaded at once (files mode). */
  concurrency?: number;
  /** Restore setuid and setgid bits as stored; dropped by default. */
  keepSetuid?: boolean;
  /** Counted into as the restore goes, for a progress display. */
  tally?: RestoreTally;
}

export interface RestoreResult {
  files: number;
  /** Files already in place with the manifest's content: not downloaded (dedup mode). */
  present: number;
  links: number;
  bytes: number;
  /** Links not recreated because they point outside `to`. */
  linksSkipped: string[];
  manifest: Manifest;
}

/**
 * Downloads a snapshot into `to` and verifies every file's size and checksum against the
 * manifest. A file is renamed into place only once verified; a mismatch fails the restore
 * (ERR_RESTORE) naming every bad file. Links are recreated when they stay inside `to`;
 * no entry is ever written through a link. Aborting `signal` stops every download, removes
 * the partial files and rejects with ERR_RESTORE.
 */
export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const { location, store } = await openRestoreStore(options);
  let hashing: FileReader | undefined;
  try {
    const where = formatLocation(location);
    const manifest = options.latest ? await latestManifest(store, location) : await readStoredJson(store, location, MANIFEST_NAME, manifestSchema, 'a preemptd manifest');
    if (!manifest.complete) {
      options.log.warn({ from: where, skipped: manifest.skipped.length }, `the snapshot is incomplete: ${manifest.skipped.length} files were not stored when it was taken`);
    }
    for (const entry of manifest.files) insideTarget(resolve(options.to), entry.path);
    const files = manifest.files.filter((entry): entry is ManifestFile => entry.type === 'file');
    const tally = options.tally ?? new RestoreTally();
    tally.filesTotal = files.length;
    tally.bytesTotal = files.reduce((sum, file) => sum + file.size, 0);
    await mkdir(options.to, { recursive: true });
    // `--to` itself may be a link (the user named it); below it, nothing is followed.
    const target = await realpath(options.to);
    await checkRoom(target, files);
    const writer: EntryWriter = { target, checksum: manifest.checksum, keepSetuid: options.keepSetuid ?? false, signal: options.signal, tally };

    const concurrency = options.concurrency ?? 4;
    // A reading thread hashes the chunks fetched into pooled buffers, started for the first.
    const reading: ChunkReading = { buffers: new RequestBuffers(WRITE_BATCH_BYTES), sha256s: (bytes, sizes) => (hashing ??= FileReader.start()).sha256s(bytes, sizes) };
    const { failures, present } =
      manifest.mode === 'files'
        ? await restoreFiles(files, writer, concurrency, (file) => store.get(keyFor(location, file.path)))
        : manifest.mode === 'dedup'
          ? await restoreFiles(files, writer, concurrency, async (file) => chunkedBody(store, location, file, reading), (file) => alreadyPresent(target, file, manifest.checksum))
          : { failures: await restoreArchive(store, location, manifest, writer), present: 0 };
    const links = await restoreLinks(manifest, target);
    const linksSkipped = links.outside;
    for (const path of linksSkipped) options.log.warn({ path }, 'link not restored: it points outside the restore directory');
    const problems = [
      ...(failures.length ? [`${failures.length} of ${files.length} files failed verification:`, ...listed(failures)] : []),
      ...(links.refused.length ? [`${links.refused.length} links refused:`, ...listed(links.refused)] : []),
    ];
    if (problems.length) throw new PreemptdError('ERR_RESTORE', `restore from ${where}: ${problems.join('\n')}`);
    const result = {
      files: files.length,
      present,
      links: manifest.files.length - files.length - linksSkipped.length - links.refused.length,
      bytes: tally.bytesTotal,
      linksSkipped,
      manifest,
    };
    await writeMarker(target, { from: where, finishedAt: manifest.finishedAt });
    options.log.info({ from: where, to: target, files: result.files, present, links: result.links, bytes: result.bytes }, 'restore finished; every checksum verified');
    return result;
  } catch (error) {
    if (!options.signal.aborted) throw error;
    throw new PreemptdError('ERR_RESTORE', `restore into ${options.to} interrupted: downloads stopped, partial files removed; files already verified are kept`, { cause: error });
  } finally {
    await hashing?.close();
    await store.close();
  }
}

/** The store a restore reads: `from` without a trailing manifest.json. */
export async function openRestoreStore(options: Omit<RestoreOptions, 'to'>): Promise<{ location: StoreLocation; store: ObjectStore }> {
  const location = parseLocation(options.from.replace(new RegExp(`${MANIFEST_NAME}$`), ''));
  const store = await openStore(location, {
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    region: options.region,
    partSize: 8 * 1024 * 1024,
    // Requests in flight per file (a dedup file's ranges fetched ahead): the store sizes its
    // keep-alive pool to concurrency x queueSize, so no fetch waits for a socket.
    queueSize: REQUESTS_AHEAD,
    concurrency: options.concurrency ?? 4,
    signal: options.signal,
    log: options.log,
  });
  return { location, store };
}

async function latestManifest(store: ObjectStore, location: StoreLocation): Promise<Manifest> {
  const latest = await readLatest(store, location);
  if (!latest) throw new PreemptdError('ERR_RESTORE', `${formatLocation(location)} has no latest.json: no complete dedup snapshot was committed there`);
  return latest.manifest;
}

function listed(failures: Failure[]): string[] {
  return failures.map((failure) => `  ${failure.path}: ${failure.reason}`);
}

/**
 * Downloads `concurrency` files at once, each verified before it is renamed into place.
 * `isPresent` (dedup mode) says a file is already there with its content: it is left as it is.
 */
async function restoreFiles(
  files: ManifestFile[],
  writer: EntryWriter,
  concurrency: number,
  openBody: (file: ManifestFile) => Promise<Readable | AsyncIterable<Buffer>>,
  isPresent?: (file: ManifestFile) => Promise<boolean>,
): Promise<{ failures: Failure[]; present: number }> {
  const failures: Failure[] = [];
  let present = 0;
  let next = 0;
  const worker = async () => {
    while (next < files.length && !writer.signal.aborted) {
      const file = files[next++]!;
      let failure: Failure | undefined;
      try {
        if (await isPresent?.(file)) {
          present += 1;
          writer.tally.filesPresent += 1;
          writer.tally.bytesReused += file.size;
          continue;
        }
        failure = await writeVerified(() => openBody(file), file, writer);
      } catch (error) {
        if (writer.signal.aborted) throw error;
        failure = { path: file.path, reason: `download failed: ${errorMessage(error)}` };
      }
      if (failure) failures.push(failure);
      writer.tally[failure ? 'filesFailed' : 'filesRestored'] += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, files.length)) }, worker));
  writer.signal.throwIfAborted();
  return { failures, present };
}

async function restoreArchive(store: ObjectStore, location: StoreLocation, manifest: Manifest, writer: EntryWriter): Promise<Failure[]> {
  const archive = manifest.archive;
  if (!archive) return [];
  const wanted = new Map(manifest.files.filter((entry): entry is ManifestFile => entry.type === 'file').map((file) => [file.path, file]));
  const failures: Failure[] = [];
  const measure = measuringStream(manifest.checksum);
  const extract = tarExtract();
  const body = await store.get(keyFor(location, archive.key));
  const decompress = archive.compression === 'gzip' ? createGunzip() : archive.compression === 'zstd' ? createZstdDecompress() : new PassThrough();
  const unpacking = pipeline(body, measure.stream, decompress, extract, { signal: writer.signal });
  // Its error also ends the loop below; it is awaited after.
  unpacking.catch(() => undefined);
  for await (const entry of extract) {
    const file = wanted.get(entry.header.name);
    if (entry.header.type !== 'file' || !file) {
      entry.resume();
      continue;
    }
    wanted.delete(file.path);
    if (entry.header.size !== file.size) {
      // Not one byte of it is written: the header says how much would come.
      failures.push({ path: file.path, reason: `archive entry of ${entry.header.size} bytes, manifest says ${file.size}: not written` });
      writer.tally.filesFailed += 1;
      entry.resume();
      continue;
    }
    // A streamx stream: async iterable at runtime, though its types do not say so.
    const failure = await writeVerified(() => Promise.resolve(entry as unknown as AsyncIterable<Buffer>), file, writer);
    if (failure) failures.push(failure);
    writer.tally[failure ? 'filesFailed' : 'filesRestored'] += 1;
    // A refused entry was never read: skip its bytes so the archive goes on (a no-op once read).
    entry.resume();
  }
  await unpacking;
  if (measure.digest() !== archive[manifest.checksum]) failures.push({ path: archive.key, reason: `archive ${manifest.checksum} does not match the manifest` });
  for (const path of wanted.keys()) failures.push({ path, reason: 'missing from the archive' });
  writer.tally.filesFailed += wanted.size;
  return failures;
}
