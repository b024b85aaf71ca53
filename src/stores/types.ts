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

/** Bytes `offset` to `offset + length - 1` of an object; `length` is at least 1. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** What a read into a buffer got: `length` bytes from the buffer's start, and whether the object had more than fit. */
export interface ReadInto {
  length: number;
  more: boolean;
}

/** One stored object as a listing or a HEAD shows it. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** When it was last written, in ms since the epoch, by the store's clock. */
  modified: number;
}

/** Keys a listing asks for at once, and a batched delete removes at once (S3's own limit). */
export const STORE_PAGE_SIZE = 1000;

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
  /**
   * Streams one object back, or only `range`'s bytes of it (a range that runs past the end
   * gives what there is: the caller checks the length); rejects when it does not exist.
   */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * `get` straight into `into` (at most its length), where the store can do it without a
   * stream; undefined when it cannot for this read, and the caller uses `get` (read-into.ts).
   */
  getInto?(key: string, range: ByteRange | undefined, into: Buffer): Promise<ReadInto | undefined>;
  /**
   * Whether an object exists under `key` (one request, no body). Every store makes an object
   * visible only once whole, so an existing object is a complete one.
   */
  has(key: string): Promise<boolean>;
  /** `has` with the object's size and last-modified time; undefined when there is none. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Every object whose key starts with `prefix` (in no promised order), fetched a page of at
   * most STORE_PAGE_SIZE keys at a time, so memory stays bounded however many there are.
   */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Removes objects (in batches where the store has a batch call). A key already gone is not
   * an error: a prune cut short is simply run again. Rejects naming the first key it could
   * not remove. `signal` stops it before its next key (S3: its next batch), rejecting with its reason.
   */
  delete(keys: readonly string[], signal?: AbortSignal): Promise<void>;
  /**
   * What puts under `prefix` left when their writer was killed (file://'s `.partial` files; the
   * other stores keep nothing visible), listed as `list` lists; `delete` removes them by key.
   */
  leftovers?(prefix: string): AsyncIterable<ObjectInfo>;
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

/** What stops one call: the store's own signal, and the call's when it has one. */
export function callSignal(store: AbortSignal, call: AbortSignal | undefined): AbortSignal {
  return call ? AbortSignal.any([call, store]) : store;
}
