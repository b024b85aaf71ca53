import type { Readable } from 'node:stream';
import { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential, type BlockBlobClient } from '@azure/storage-blob';
import { PreemptdError } from '../lib/errors.js';
import { countBytes } from './count.js';
import { formatLocation, type AzureLocation } from './location.js';
import { streamOfParts } from './parts.js';
import { noBytes } from './range.js';
import { abortError, callSignal, STORE_PAGE_SIZE, type ObjectInfo, type ObjectStore, type StoreOptions } from './types.js';

/**
 * Azure Blob Storage, block blobs. Credentials, first found: AZURE_STORAGE_CONNECTION_STRING,
 * AZURE_STORAGE_KEY (shared key for the account in the URL), AZURE_STORAGE_SAS_TOKEN, then
 * @azure/identity's DefaultAzureCredential (service principal or workload identity from the
 * environment, then the VM's managed identity). Reads `endpoint` (Azurite:
 * http://127.0.0.1:10000/devstoreaccount1), `partSize` (block size), `queueSize` (blocks in
 * flight) and the signals.
 * Blocks staged by an unfinished upload are never visible; `cleanup()` discards them rather
 * than leave them billed until Azure drops them after a week.
 */
export async function openAzureStore(location: AzureLocation, options: StoreOptions, answerTimeoutMs = AZURE_ANSWER_TIMEOUT_MS): Promise<ObjectStore> {
  const service = await serviceClient(location, options.endpoint);
  const container = service.getContainerClient(location.container);
  /** Keys whose put failed after it may have staged blocks. */
  const unfinished = new Set<string>();
  const answered = <T>(what: string, outer: AbortSignal, call: (signal: AbortSignal) => Promise<T>) => answeredWithin(answerTimeoutMs, `${what} (${formatLocation(location)})`, outer, call);

  const stat = async (key: string): Promise<ObjectInfo | undefined> => {
    try {
      const properties = await answered(`HEAD ${key}`, options.signal, (abortSignal) => container.getBlobClient(key).getProperties({ abortSignal }));
      return { key, size: properties.contentLength ?? 0, modified: properties.lastModified?.getTime() ?? Date.now() };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  };

  return {
    url: formatLocation(location),
    async put(key, parts, { onBytes, signal } = {}) {
      const stops = callSignal(options.signal, signal);
      const body = streamOfParts(parts);
      try {
        await container
          .getBlockBlobClient(key)
          .uploadStream(body.pipe(countBytes(onBytes)), options.partSize, options.queueSize, { abortSignal: stops });
      } catch (error) {
        body.destroy();
        unfinished.add(key);
        throw stops.aborted ? abortError() : error;
      }
    },
    async get(key, range) {
      try {
        const response = await answered(`GET ${key}`, options.signal, (abortSignal) => container.getBlobClient(key).download(range?.offset ?? 0, range?.length, { abortSignal }));
        return response.readableStreamBody as Readable;
      } catch (error) {
        // 416 InvalidRange: the blob is there, the range starts at or past its end.
        if (range && statusOf(error) === 416) return noBytes();
        throw error;
      }
    },
    has: async (key) => (await stat(key)) !== undefined,
    stat,
    async *list(prefix) {
      // A page at a time, each its own request with its own answer timeout.
      let continuationToken: string | undefined;
      do {
        const page = await answered(`listing ${prefix}`, options.signal, async (abortSignal) => {
          const pages = container.listBlobsFlat({ prefix, abortSignal }).byPage({ maxPageSize: STORE_PAGE_SIZE, ...(continuationToken ? { continuationToken } : {}) });
          const next = await pages.next();
          return next.done ? undefined : next.value;
        });
        for (const blob of page?.segment.blobItems ?? []) yield { key: blob.name, size: blob.properties.contentLength ?? 0, modified: blob.properties.lastModified.getTime() };
        continuationToken = page?.continuationToken || undefined;
      } while (continuationToken);
    },
    async delete(keys, signal) {
      const stops = callSignal(options.signal, signal);
      for (const key of keys) {
        stops.throwIfAborted();
        await answered(`DELETE ${key}`, stops, (abortSignal) => container.getBlobClient(key).deleteIfExists({ abortSignal }));
      }
    },
    async cleanup() {
      const left: string[] = [];
      for (const key of unfinished) {
        try {
          await discardStagedBlocks(container.getBlockBlobClient(key));
        } catch (error) {
          options.log.warn({ key, err: error }, 'could not discard the blocks an unfinished upload staged');
          left.push(key);
        }
      }
      unfinished.clear();
      return left;
    },
    async close() {},
  };
}

/**
 * Azure has no call that drops uncommitted blocks; committing a block list does (every staged
 * block it does not name goes). So: commit an empty list, only if no blob is committed under
 * the key (an existing blob, another writer's, is never replaced: its stray blocks go at its
 * next commit or after a week), then delete the empty blob that made, only if still that one.
 */
async function discardStagedBlocks(blob: BlockBlobClient): Promise<void> {
  const staged = await blob.getBlockList('uncommitted').catch((error: unknown) => {
    if (statusOf(error) === 404) return undefined;
    throw error;
  });
  if (!staged?.uncommittedBlocks?.length) return;
  let etag: string | undefined;
  try {
    ({ etag } = await blob.commitBlockList([], { conditions: { ifNoneMatch: '*' } }));
  } catch (error) {
    if (statusOf(error) === 409 || statusOf(error) === 412) return;
    throw error;
  }
  await blob.delete({ conditions: { ifMatch: etag } });
}

/**
 * How long a HEAD, a listing page, a DELETE or a GET (until its answer starts; the body is not
 * bounded) may wait for Azure's answer. @azure/storage-blob 12.32 offers no client-side timeout
 * a store can set (`tryTimeoutInMs` only asks the server, as `?timeout=`), so a server that
 * accepts and goes silent held these until the step's signal, and a background sync has none.
 * Each is a small request; 60 s is far beyond a healthy answer. Uploads are not bounded this
 * way: a whole put may rightly take minutes.
 */
export const AZURE_ANSWER_TIMEOUT_MS = 60_000;

/** `call` with a signal that also aborts when it has not resolved within `ms`; that is an ERR_STORE naming `what`. */
async function answeredWithin<T>(ms: number, what: string, outer: AbortSignal, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const silent = new AbortController();
  const timer = setTimeout(() => silent.abort(), ms);
  try {
    return await call(AbortSignal.any([outer, silent.signal]));
  } catch (error) {
    if (silent.signal.aborted && !outer.aborted) throw new PreemptdError('ERR_STORE', `${what}: Azure sent no answer within ${ms / 1000} s`, { cause: error });
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

async function serviceClient(location: AzureLocation, endpoint: string | undefined): Promise<BlobServiceClient> {
  const env = process.env;
  if (env.AZURE_STORAGE_CONNECTION_STRING) return BlobServiceClient.fromConnectionString(env.AZURE_STORAGE_CONNECTION_STRING);
  const url = (endpoint ?? `https://${location.account}.blob.core.windows.net`).replace(/\/$/, '');
  if (env.AZURE_STORAGE_KEY) return new BlobServiceClient(url, new StorageSharedKeyCredential(location.account, env.AZURE_STORAGE_KEY));
  if (env.AZURE_STORAGE_SAS_TOKEN) return new BlobServiceClient(`${url}?${env.AZURE_STORAGE_SAS_TOKEN.replace(/^\?/, '')}`, new AnonymousCredential());
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new BlobServiceClient(url, new DefaultAzureCredential());
}
