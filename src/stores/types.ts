import type { Readable } from 'node:stream';
import type { Logger } from '../lib/log.js';
import type { Parts } from './parts.js';

/** Settings a store may use; each store file says which ones it reads. */
export interface StoreOptions {
  /** S3-compatible, GCS or Azure endpoint override (MinIO, R2, Ceph, emulators). */
  endpoint?: string | undefined;
  /** S3 only: `http://host/bucket/key` instead of `http://bucket.host/key`. */
  forcePathStyle?: boolean | undefined;
  /** S3 only: the bucket's region when the SDK's own chain does not know it. */
  region?: string | undefined;
  /** Bytes per part (multipart, resumable chunk or block). */
  partSize: number;
  /** Parts of one object in flight at once. */
  queueSize: number;
  /** Objects in flight at once (sizes the connection pool). */
  concurrency: number;
  /**
   * Aborting it stops every transfer now (the step's own deadline). `cleanup()` still works
   * afterwards.
   */
  signal: AbortSignal;
  log: Logger;
}

export interface PutOptions {
  /** Told of bytes that reached the store, as they do. */
  onBytes?: (bytes: number) => void;
  /** Stops this put (the snapshot's cut-off before the deadline). */
  signal?: AbortSignal;
}

export interface ObjectStore {
  /** The location as a URL, safe to log. */
  readonly url: string;
  /**
   * Stores `parts` (of `partSize`, the last may be shorter; any number) as one object.
   * Resolves once the object is complete and visible; rejects with an AbortError when
   * `options.signal` (or the store's) aborted first, in which case its requests in flight
   * were cancelled.
   */
  put(key: string, parts: Parts, options?: PutOptions): Promise<void>;
  /** Streams one object back; rejects when it does not exist. */
  get(key: string): Promise<Readable>;
  /**
   * Whether an object exists under `key` (one request, no body). Every store makes an object
   * visible only once whole, so an existing object is a complete one.
   */
  has(key: string): Promise<boolean>;
  /**
   * Removes what unfinished puts left behind (S3 multipart uploads, partial files). Call it
   * once every put has settled. Resolves to the keys it could not clean, if any.
   */
  cleanup(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The error a store's `put` rejects with once its signal aborted. It has no preemptd code on
 * purpose: it stands for the platform's AbortError, which callers already tell apart by name.
 */
export function abortError(): Error {
  return Object.assign(new Error('transfer stopped'), { name: 'AbortError' });
}
