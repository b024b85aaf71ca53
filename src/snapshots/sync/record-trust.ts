import type { Logger } from '../../lib/log.js';
import type { StoreLocation } from '../../stores/location.js';
import type { ObjectStore } from '../../stores/types.js';
import { CHUNK_REUSE_WINDOW_MS, manifestChunks, readManifest, readPointer } from '../repository.js';
import type { StoredChunk } from '../manifest.js';
import type { SyncRecord } from './record.js';

/**
 * How often the record is held against latest.json: a GET of the pointer each time. Prune
 * deletes only chunks past its grace (24 h by default, 2 h at least), so a minute of lag is
 * nothing against it, and an idle sync no longer reads the pointer every pass.
 */
const CHECK_EVERY_MS = 60_000;

/**
 * A file recorded longer ago than the chunk reuse window is trusted only while the pointer's
 * manifest names all its chunks in the same packs (or chunk objects): prune keeps that
 * manifest and what it names, but may delete an older pack no kept manifest names (another
 * writer on the prefix moved the pointer on). Forgotten files are read again, and their
 * chunks the pointer's manifest does not name are sent again.
 */
export class RecordTrust {
  /** The chunks of the manifest `latest.json` named when last read, by that name. */
  private pointerChunks: { name: string | undefined; chunks: ReadonlyMap<string, StoredChunk> } | undefined;
  private checkedAt: number | undefined;

  constructor(
    private readonly record: SyncRecord,
    private readonly store: ObjectStore,
    private readonly location: StoreLocation,
    private readonly log: Logger,
  ) {}

  async check(now = Date.now()): Promise<void> {
    const before = now - CHUNK_REUSE_WINDOW_MS;
    if (!this.record.hasStoredBefore(before) || (this.checkedAt !== undefined && now - this.checkedAt < CHECK_EVERY_MS)) return;
    const pointer = (await readPointer(this.store, this.location))?.manifest;
    const named =
      pointer !== undefined && pointer === this.pointerChunks?.name
        ? this.pointerChunks
        : { name: pointer, chunks: pointer === undefined ? new Map<string, StoredChunk>() : manifestChunks(await readManifest(this.store, this.location, pointer)) };
    this.pointerChunks = named;
    this.checkedAt = now;
    const forgotten = this.record.forgetUnprotected(before, named.chunks);
    if (forgotten > 0) this.log.info({ files: forgotten, pointer }, 'files stored over an hour ago and not in the latest snapshot are read again');
  }
}
