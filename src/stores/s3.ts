import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from '@smithy/types';
import { formatLocation, type BucketLocation } from './location.js';
import { noBytes, rangeHeader, rangeOfWhole } from './range.js';
import { BodyReader } from './body-reader.js';
import { DIRECT_IDLE_TIMEOUT_MS, DirectRequests, sdkStatus } from './s3-direct.js';
import { abortUpload, uploadParts } from './s3-multipart.js';
import { PreemptdError } from '../lib/errors.js';
import { abortError, callSignal, STORE_PAGE_SIZE, type ByteRange, type ObjectInfo, type ObjectStore, type StoreOptions } from './types.js';

/**
 * Throughput settings. Figures: the 2 GiB bench (bench/snapshot-throughput.bench.ts) to a
 * loopback discard sink on 2 shared cores (docs/snapshot.md):
 * - Our own part uploader (s3-multipart.ts) instead of lib-storage's `Upload`: each part is
 *   read straight into its own buffer on the reading thread and sent as it is, where
 *   lib-storage cut a stream into parts with a copy of every byte and left the garbage
 *   collector 20-29 % of this thread. lib-storage: 239 MB/s, 5.95 CPU-s/GB, peak RSS 265 MB;
 *   ours, the same run conditions: 437-514 MB/s, 2.4-3.1 CPU-s/GB, 141-176 MB.
 * - Unsigned payload: a part that carries its CRC32 (S3 checks every part's bytes against
 *   it) is signed as UNSIGNED-PAYLOAD, as the SDK itself does for streamed bodies, instead of
 *   hashing each body with SHA-256 once more for SigV4. Signed: 10.7-11.2 s and 15.0-15.9
 *   CPU-s; unsigned: 8.9-9.4 s and 13.0-13.2 CPU-s (with lib-storage).
 * - CRC32 as the parts' checksum algorithm, not CRC32C: @node-rs/crc32 computes CRC32 at
 *   14-15 GB/s here and CRC32C at 4.5-5 GB/s; S3 verifies either.
 * - Part CRC32s computed on the reading thread instead of by the SDK on this one: 9.9-10.3 s
 *   and 14.1-15.0 CPU-s before, 8.9-9.4 s and 13.0-13.2 after (with lib-storage).
 * - `expectContinueHeader: false`: no measurable change on loopback (8.8-9.8 s with the
 *   header); on a real link it saves the round trip the SDK waits for `100 Continue` before
 *   sending each part's body.
 * - Keep-alive agents sized to every part in flight: no part waits for a socket or pays a
 *   TCP/TLS handshake (the SDK's agent is keep-alive too; its pool is 50 sockets).
 * Part size and parts in flight come from the step options (defaults in snapshot/options.ts).
 */
const EXPECT_CONTINUE = false;
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * How long a request through the SDK may see nothing on its socket before it is given up
 * (and retried by the SDK's own strategy): without it a server that accepts and then goes
 * silent holds a background sync for good. Longer than the direct requests' (which fall back
 * here): part uploads and CompleteMultipartUpload may wait on a busy server for seconds.
 */
export const SDK_IDLE_TIMEOUT_MS = 30_000;

/** Idle timeouts, in ms; tests shorten them. */
export interface S3Timeouts {
  directIdleMs?: number;
  sdkIdleMs?: number;
}

/**
 * The S3 API (AWS, MinIO, R2, Ceph, GCS interoperability). Credentials come from the SDK's
 * default chain: environment, shared files, SSO, web identity, the instance profile through
 * IMDS. Reads every StoreOptions field. `timeouts`: see DIRECT_IDLE_TIMEOUT_MS and SDK_IDLE_TIMEOUT_MS.
 */
export function openS3Store(location: BucketLocation, options: StoreOptions, timeouts: S3Timeouts = {}): ObjectStore {
  const sockets = options.concurrency * options.queueSize + 2;
  const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: sockets }), https: new HttpsAgent({ keepAlive: true, maxSockets: sockets }) };
  const client = new S3Client({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    followRegionRedirects: true,
    expectContinueHeader: EXPECT_CONTINUE,
    requestHandler: new NodeHttpHandler({
      httpAgent: agents.http,
      httpsAgent: agents.https,
      connectionTimeout: CONNECT_TIMEOUT_MS,
      socketTimeout: timeouts.sdkIdleMs ?? SDK_IDLE_TIMEOUT_MS,
    }),
  });
  const openUploads = new Map<string, string>();
  sendUnsignedChecksummedPayloads(client);
  const directIdleMs = timeouts.directIdleMs ?? DIRECT_IDLE_TIMEOUT_MS;
  const reader = new BodyReader({ maxSockets: sockets, idleMs: directIdleMs });
  const direct = new DirectRequests(client, agents, reader, options.log, directIdleMs);
  let toldRangeIgnored = false;

  /**
   * A GET's body as the caller asked for it. A ranged GET answered with a 200 (a server or
   * proxy that ignores Range) still gives only the range's bytes, cut out of the whole object
   * as it streams by: correct, but every read of a pack range then reads the pack from its
   * start, so it is said once.
   */
  const asked = (status: number | undefined, body: Readable, range: ByteRange | undefined): Readable => {
    if (!range || status === 206) return body;
    if (status === 416) {
      body.resume();
      return noBytes();
    }
    if (!toldRangeIgnored) options.log.warn({ store: formatLocation(location) }, 'the S3 server ignores byte ranges: each ranged read fetches the object from its start');
    toldRangeIgnored = true;
    return rangeOfWhole(body, range);
  };

  const stat = async (key: string): Promise<ObjectInfo | undefined> => {
    const found = await direct.head(key, options.signal);
    if (found) return found === 'missing' ? undefined : { key, ...found };
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: key }), { abortSignal: options.signal });
      return { key, size: head.ContentLength ?? 0, modified: head.LastModified?.getTime() ?? Date.now() };
    } catch (error) {
      // A HEAD answer has no body, so no error code: the status is all there is.
      if (sdkStatus(error) === 404) return undefined;
      throw error;
    }
  };

  return {
    url: formatLocation(location),
    async put(key, parts, { onBytes, signal } = {}) {
      const stops = callSignal(options.signal, signal);
      if (stops.aborted) throw abortError();
      const target = { Bucket: location.bucket, Key: key };
      await uploadParts(client, target, parts, { queueSize: options.queueSize, signal: stops, onBytes, open: openUploads, putDirect: (key, part, stop) => direct.put(key, part, stop) });
    },
    async get(key, range) {
      const answer = await direct.get(key, range, options.signal);
      if (answer) return asked(answer.status, answer.body, range);
      try {
        const response = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: key, Range: range && rangeHeader(range) }), { abortSignal: options.signal });
        return asked(response.$metadata.httpStatusCode, response.Body as Readable, range);
      } catch (error) {
        // 416 InvalidRange: the object is there, the range starts at or past its end.
        if (range && sdkStatus(error) === 416) return noBytes();
        throw error;
      }
    },
    getInto: (key, range, into) => direct.getInto(key, range, into, options.signal),
    has: async (key) => (await stat(key)) !== undefined,
    stat,
    async *list(prefix) {
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: location.bucket, Prefix: prefix, MaxKeys: STORE_PAGE_SIZE, ContinuationToken: token }),
          { abortSignal: options.signal },
        );
        for (const object of page.Contents ?? []) yield { key: object.Key!, size: object.Size ?? 0, modified: object.LastModified?.getTime() ?? Date.now() };
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
    async delete(keys, signal) {
      const stops = callSignal(options.signal, signal);
      // One DeleteObjects call per page of keys; it answers 200 with a list of the keys it failed.
      for (let start = 0; start < keys.length; start += STORE_PAGE_SIZE) {
        stops.throwIfAborted();
        const batch = keys.slice(start, start + STORE_PAGE_SIZE);
        const answer = await client.send(
          new DeleteObjectsCommand({ Bucket: location.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          { abortSignal: stops },
        );
        const failed = answer.Errors?.[0];
        if (failed) throw new PreemptdError('ERR_STORE', `cannot delete ${failed.Key} from ${location.bucket}: ${failed.Code} ${failed.Message ?? ''}`.trim());
      }
    },
    async cleanup() {
      // Each put aborts its own upload when it fails; what is listed here could not be aborted then.
      const left: string[] = [];
      await Promise.all(
        [...openUploads].map(([uploadId, key]) =>
          abortUpload(client, { Bucket: location.bucket, Key: key }, uploadId, openUploads).catch((error: unknown) => {
            options.log.warn({ key, err: error }, 'could not abort an unfinished multipart upload');
            left.push(key);
          }),
        ),
      );
      return left;
    },
    async close() {
      reader.destroy();
      client.destroy();
    },
  };
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
