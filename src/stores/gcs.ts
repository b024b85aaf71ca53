import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IdempotencyStrategy, RETRYABLE_ERR_FN_DEFAULT, Storage, type FileMetadata, type StorageOptions } from '@google-cloud/storage';
import { PreemptdError } from '../lib/errors.js';
import { countBytes } from './count.js';
import { formatLocation, type BucketLocation } from './location.js';
import { streamOfParts } from './parts.js';
import { noBytes } from './range.js';
import { abortError, callSignal, STORE_PAGE_SIZE, type ObjectInfo, type ObjectStore, type StoreOptions } from './types.js';

/**
 * How long one request may wait for the head of its answer before it is given up, so a server
 * that accepts and then goes silent never holds a background sync for good. The SDK has no
 * idle timeout: its `timeout` runs from the socket to the answer's head, so it also covers
 * sending a resumable chunk (`partSize`, default 8 MiB). 120 s still lets through 8 MiB chunks
 * from `concurrency` (4) uploads sharing a 2.3 Mbit/s link; a GET's body is not covered.
 */
export const GCS_REQUEST_TIMEOUT_MS = 120_000;

type RequestOptions = ReturnType<NonNullable<StorageOptions['interceptors_']>[number]['request']>;

/** node-fetch's mark on a request its `timeout` gave up: on the error itself or, from gaxios, on its `error`. */
function timedOut(error: unknown): boolean {
  const { type, error: cause } = (error ?? {}) as { type?: unknown; error?: { type?: unknown } };
  return type === 'request-timeout' || cause?.type === 'request-timeout';
}

/**
 * Google Cloud Storage through its JSON API. Credentials come from the SDK's default chain:
 * GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default file, then the VM's service
 * account through the metadata server. With `endpoint` (an emulator) no credentials are used.
 * Reads `endpoint`, `partSize` and the signals.
 *
 * Each object is one resumable upload streamed in `partSize` chunks: the JSON API has no
 * parallel parts (for those, use the S3 store against GCS's XML API with HMAC keys).
 * Integrity: MD5 validation, checked by GCS against the stored object. The SDK's other choice,
 * CRC32C, is computed in JavaScript at 61 MB/s here against 500 MB/s for OpenSSL's MD5:
 * it would be the bottleneck of a 30-second window.
 * An abandoned resumable session stores nothing visible and expires after a week, so
 * `cleanup()` has nothing to remove.
 * `timeoutMs` (tests shorten it): see GCS_REQUEST_TIMEOUT_MS. Resumable uploads (gaxios) do not
 * read the client's `timeout`, only the options an interceptor gives them. A timed-out request
 * is retried like a reset connection, except the one opening an upload session: the SDK hands
 * its retry test only the HTTP status, which a timeout lacks, so the put fails.
 */
export function openGcsStore(location: BucketLocation, options: StoreOptions, timeoutMs = GCS_REQUEST_TIMEOUT_MS): ObjectStore {
  const storage = new Storage({
    ...(options.endpoint ? { apiEndpoint: options.endpoint } : {}),
    timeout: timeoutMs,
    // Typed as if every request had a `uri`; the SDK also passes `{}` (for resumable uploads) and gaxios options.
    interceptors_: [{ request: (request) => ({ ...request, timeout: timeoutMs }) as RequestOptions }],
    retryOptions: {
      autoRetry: true,
      maxRetries: 3,
      retryableErrorFn: (error) => RETRYABLE_ERR_FN_DEFAULT(error) || timedOut(error),
      // By default an upload without an ifGenerationMatch precondition is never retried; ours may
      // be: an object is written whole or not at all, and a retried write stores the same bytes.
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
  });
  const bucket = storage.bucket(location.bucket);

  const stat = async (key: string): Promise<ObjectInfo | undefined> => {
    try {
      const [metadata] = await bucket.file(key).getMetadata();
      return infoOf(key, metadata);
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) return undefined;
      throw error;
    }
  };

  return {
    url: formatLocation(location),
    async put(key, parts, { onBytes, signal } = {}) {
      const stops = callSignal(options.signal, signal);
      const writable = bucket.file(key).createWriteStream({
        resumable: true,
        chunkSize: options.partSize,
        validation: 'md5',
        contentType: 'application/octet-stream',
      });
      try {
        await pipeline(streamOfParts(parts), countBytes(onBytes), writable, { signal: stops });
      } catch (error) {
        throw stops.aborted ? abortError() : error;
      }
    },
    async get(key, range) {
      const found = await stat(key);
      if (!found) throw new PreemptdError('ERR_STORE', `${formatLocation(location)}${key.slice(location.prefix.length)} does not exist`);
      // GCS answers a range that starts at or past the end with 416; one that runs past the end, with what there is.
      if (range && range.offset >= found.size) return noBytes();
      const bounds = range ? { start: range.offset, end: range.offset + range.length - 1 } : {};
      return bucket.file(key).createReadStream({ validation: false, ...bounds }) as Readable;
    },
    has: async (key) => (await stat(key)) !== undefined,
    stat,
    async *list(prefix) {
      let pageToken: string | undefined;
      do {
        const [files, next] = await bucket.getFiles({ prefix, maxResults: STORE_PAGE_SIZE, autoPaginate: false, ...(pageToken ? { pageToken } : {}) });
        for (const file of files) yield infoOf(file.name, file.metadata);
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    },
    async delete(keys, signal) {
      for (const key of keys) {
        signal?.throwIfAborted();
        await bucket.file(key).delete({ ignoreNotFound: true });
      }
    },
    async cleanup() {
      return [];
    },
    async close() {},
  };
}

function infoOf(key: string, metadata: FileMetadata): ObjectInfo {
  return { key, size: Number(metadata.size ?? 0), modified: metadata.updated ? Date.parse(metadata.updated) : Date.now() };
}
