import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  S3Client,
  type CompleteMultipartUploadCommandInput,
  type CreateMultipartUploadCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { FinalizeHandler, FinalizeHandlerArguments, HttpHandlerOptions, MetadataBearer } from '@smithy/types';
import { errorMessage } from '../errors.js';
import { formatLocation, type BucketLocation } from './location.js';
import { abortError, type ObjectStore, type PutOptions, type StoreOptions } from './store.js';

/**
 * Throughput settings. Figures: the 2 GiB bench (bench/snapshot-throughput.bench.ts) to a
 * loopback discard sink on 2 shared cores, 3 interleaved runs each (docs/snapshot.md):
 * - Unsigned payload: a part that carries its CRC32 (S3 checks every part's bytes against
 *   it) is signed as UNSIGNED-PAYLOAD, as the SDK itself does for streamed bodies, instead of
 *   hashing each body with SHA-256 once more for SigV4. Signed: 10.7-11.2 s and 15.0-15.9
 *   CPU-s; unsigned: 8.9-9.4 s and 13.0-13.2 CPU-s.
 * - Part CRC32s computed on the reading thread (`partCrc32`) instead of by the SDK on this
 *   one: 9.9-10.3 s and 14.1-15.0 CPU-s before, 8.9-9.4 s and 13.0-13.2 after.
 * - `expectContinueHeader: false`: no measurable change on loopback (8.8-9.8 s with the
 *   header); on a real link it saves the round trip the SDK waits for `100 Continue` before
 *   sending each part's body.
 * - Keep-alive agents sized to every part in flight: no part waits for a socket or pays a
 *   TCP/TLS handshake (the SDK's agent is keep-alive too; its pool is 50 sockets).
 * Part size and parts in flight come from the step options (defaults in snapshot/options.ts).
 */
const EXPECT_CONTINUE = false;
const CONNECT_TIMEOUT_MS = 5_000;

/** Waits this long at most for cancelled requests to settle before aborting their uploads. */
const DRAIN_WAIT_MS = 3_000;

/**
 * The S3 API (AWS, MinIO, R2, Ceph, GCS interoperability). Credentials come from the SDK's
 * default chain: environment, shared files, SSO, web identity, the instance profile through
 * IMDS. Reads every StoreOptions field.
 */
export function openS3Store(location: BucketLocation, options: StoreOptions): ObjectStore {
  const sockets = options.concurrency * options.queueSize + 2;
  const handler = new CancellableHttpHandler(options.signal, {
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: sockets }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: sockets }),
    connectionTimeout: CONNECT_TIMEOUT_MS,
  });
  const client = new S3Client({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    followRegionRedirects: true,
    expectContinueHeader: EXPECT_CONTINUE,
    requestHandler: handler,
  });
  const openUploads = trackMultipartUploads(client);
  usePartChecksumsGiven(client);
  sendUnsignedChecksummedPayloads(client);

  return {
    url: formatLocation(location),
    async put(key, body, { onBytes, signal, partCrc32 } = {}) {
      const stops = signal ? AbortSignal.any([signal, options.signal]) : options.signal;
      if (stops.aborted) {
        body.destroy();
        throw abortError();
      }
      const upload = new Upload({
        client,
        params: { Bucket: location.bucket, Key: key, Body: body },
        partSize: options.partSize,
        queueSize: options.queueSize,
      });
      let reported = 0;
      upload.on('httpUploadProgress', (progress) => {
        const loaded = progress.loaded ?? 0;
        if (loaded > reported) onBytes?.(loaded - reported);
        reported = Math.max(reported, loaded);
      });
      const stop = () => void upload.abort();
      stops.addEventListener('abort', stop, { once: true });
      try {
        // Requests lib-storage sends from here on carry this put's signal and checksums.
        await putContext.run({ signal: stops, partCrc32 }, () => upload.done());
      } catch (error) {
        body.destroy();
        throw stops.aborted ? abortError() : error;
      } finally {
        stops.removeEventListener('abort', stop);
      }
    },
    async get(key) {
      const response = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: key }));
      return response.Body as Readable;
    },
    async cleanup() {
      await handler.drained(DRAIN_WAIT_MS);
      const left: string[] = [];
      for (const [uploadId, key] of openUploads) {
        try {
          await client.send(new AbortMultipartUploadCommand({ Bucket: location.bucket, Key: key, UploadId: uploadId }));
        } catch (error) {
          // lib-storage may have aborted it a moment earlier: gone is what we want.
          if ((error as Error).name !== 'NoSuchUpload') {
            options.log.warn({ key, err: errorMessage(error) }, 'could not abort an unfinished multipart upload');
            left.push(key);
            continue;
          }
        }
        openUploads.delete(uploadId);
      }
      return left;
    },
    async close() {
      client.destroy();
    },
  };
}

/** The put whose code is running: lib-storage passes nothing of its own to its requests. */
const putContext = new AsyncLocalStorage<{ signal: AbortSignal; partCrc32: PutOptions['partCrc32'] }>();

/**
 * The SDK's HTTP handler, plus cancellation: a request is cancelled when the store's signal
 * or its put's signal aborts, so a part stops mid-transfer at the cut-off. AbortMultipartUpload
 * (DELETE) is never cancelled: it is the clean-up.
 */
class CancellableHttpHandler extends NodeHttpHandler {
  private inFlight = 0;
  private readonly idle = new Set<() => void>();

  constructor(
    private readonly storeSignal: AbortSignal,
    options: ConstructorParameters<typeof NodeHttpHandler>[0],
  ) {
    super(options);
  }

  override async handle(request: Parameters<NodeHttpHandler['handle']>[0], options: HttpHandlerOptions = {}) {
    const signals =
      request.method === 'DELETE'
        ? []
        : [options.abortSignal as AbortSignal | undefined, this.storeSignal, putContext.getStore()?.signal].filter(
            (signal): signal is AbortSignal => signal !== undefined,
          );
    this.inFlight += 1;
    try {
      return await super.handle(request, { ...options, abortSignal: signals.length ? AbortSignal.any(signals) : undefined });
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const resolve of this.idle) resolve();
    }
  }

  /** Resolves when no request is in flight, or after `maxMs`. */
  drained(maxMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idle.delete(done);
        resolve();
      };
      const timer = setTimeout(done, maxMs);
      this.idle.add(done);
    });
  }
}

/** Multipart uploads created and not yet completed or aborted: uploadId → key. */
function trackMultipartUploads(client: S3Client): Map<string, string> {
  const open = new Map<string, string>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const input = args.input as Partial<CompleteMultipartUploadCommandInput>;
      if (context.commandName === 'CreateMultipartUploadCommand') {
        const output = result.output as CreateMultipartUploadCommandOutput;
        if (output.UploadId && output.Key) open.set(output.UploadId, output.Key);
      } else if (
        (context.commandName === 'CompleteMultipartUploadCommand' || context.commandName === 'AbortMultipartUploadCommand') &&
        input.UploadId
      ) {
        open.delete(input.UploadId);
      }
      return result;
    },
    { step: 'initialize', name: 'preemptdTrackMultipartUploads' },
  );
  return open;
}

/**
 * Parts whose CRC32 the put was given (computed while reading, on the reading thread) carry
 * it, so the SDK does not compute it again on this thread.
 */
function usePartChecksumsGiven(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const partCrc32 = putContext.getStore()?.partCrc32;
      const input = args.input as { PartNumber?: number; ChecksumCRC32?: string };
      if (partCrc32 && !input.ChecksumCRC32 && (context.commandName === 'UploadPartCommand' || context.commandName === 'PutObjectCommand')) {
        input.ChecksumCRC32 = await partCrc32(input.PartNumber ?? 1);
      }
      return next(args);
    },
    { step: 'initialize', name: 'preemptdGivenPartChecksums' },
  );
}

/**
 * A request body that carries a checksum header (`x-amz-checksum-crc32`, which S3 verifies)
 * is signed as UNSIGNED-PAYLOAD, as the SDK itself does for streamed bodies, instead of
 * hashing it with SHA-256 once more for the signature.
 */
function sendUnsignedChecksummedPayloads(client: S3Client): void {
  client.middlewareStack.addRelativeTo(
    (next: FinalizeHandler<object, MetadataBearer>) => async (args: FinalizeHandlerArguments<object>) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const headers = request.headers;
      if (headers && request.body && Object.keys(headers).some((name) => name.toLowerCase().startsWith('x-amz-checksum-'))) {
        headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'preemptdUnsignedChecksummedPayload' },
  );
}
