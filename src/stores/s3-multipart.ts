import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { crc32Header, type Part, type Parts } from './parts.js';
import { PreemptdError } from '../lib/errors.js';
import { abortError } from './types.js';

/**
 * How long an AbortMultipartUpload may take. It runs at the cut-off, inside the step's
 * reserve (2 s by default), so it must not use all of it.
 */
export const ABORT_TIMEOUT_MS = 1_000;

export interface MultipartTarget {
  Bucket: string;
  Key: string;
}

export interface PartUploadOptions {
  /** Parts in flight at once. */
  queueSize: number;
  /** Cancels every request in flight and fails the upload with an AbortError. */
  signal: AbortSignal;
  onBytes?: ((bytes: number) => void) | undefined;
  /** Multipart uploads created and not yet completed or aborted (uploadId → key), kept for `cleanup()`. */
  open: Map<string, string>;
  /** Sends a single-part object without the SDK (s3-direct.ts); false: the SDK sends it. */
  putDirect?: (key: string, part: Part, signal: AbortSignal) => Promise<boolean>;
}

/**
 * Uploads `parts` as one object: a single PutObject when there is one part, otherwise a
 * multipart upload with `queueSize` parts in flight, each carrying its CRC32 (which S3 checks
 * against the bytes it got). The SDK retries a failed part (3 attempts in all). A part's
 * buffer is released once S3 has it. On failure or abort the requests in flight are cancelled,
 * then the upload is aborted so no part is left stored; one that cannot be aborted stays in
 * `open`.
 */
export async function uploadParts(client: S3Client, target: MultipartTarget, parts: Parts, options: PartUploadOptions): Promise<void> {
  const iterator = Symbol.asyncIterator in parts ? parts[Symbol.asyncIterator]() : parts[Symbol.iterator]();
  const { signal } = options;
  try {
    const first = await iterator.next();
    const second = first.done ? first : await iterator.next();
    if (second.done) {
      const only: Part = first.done ? { bytes: Buffer.alloc(0), crc32: 0 } : first.value;
      if (!(await options.putDirect?.(target.Key, only, signal))) {
        await client.send(new PutObjectCommand({ ...target, Body: only.bytes, ChecksumCRC32: crc32Header(only.crc32) }), { abortSignal: signal });
      }
      options.onBytes?.(only.bytes.length);
      only.release?.();
      return;
    }
    const created = await client.send(new CreateMultipartUploadCommand({ ...target, ChecksumAlgorithm: 'CRC32' }), { abortSignal: signal });
    const uploadId = created.UploadId;
    if (!uploadId) throw new PreemptdError('ERR_STORE', `CreateMultipartUpload for ${target.Key} answered without an UploadId`);
    options.open.set(uploadId, target.Key);
    await uploadEachPart(client, { ...target, uploadId }, [first.value!, second.value], iterator, options);
  } catch (error) {
    throw signal.aborted ? abortError() : error;
  } finally {
    await iterator.return?.();
  }
}

async function uploadEachPart(
  client: S3Client,
  upload: MultipartTarget & { uploadId: string },
  firstParts: Part[],
  rest: Iterator<Part> | AsyncIterator<Part>,
  options: PartUploadOptions,
): Promise<void> {
  const { Bucket, Key, uploadId } = upload;
  const cancel = new AbortController();
  const stops = AbortSignal.any([options.signal, cancel.signal]);
  const completed: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const send = (part: Part, PartNumber: number) => {
    const ChecksumCRC32 = crc32Header(part.crc32);
    const sent = client
      .send(new UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber, Body: part.bytes, ChecksumCRC32 }), { abortSignal: stops })
      .then(({ ETag }) => {
        completed.push({ PartNumber, ETag, ChecksumCRC32 });
        options.onBytes?.(part.bytes.length);
        part.release?.();
      })
      .catch((error: unknown) => {
        failure ??= error;
        cancel.abort();
      })
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
  };

  let partNumber = 0;
  const readAlready = [...firstParts];
  try {
    while (!stops.aborted) {
      if (inFlight.size >= options.queueSize) {
        await Promise.race(inFlight);
        continue;
      }
      const next = readAlready.length ? { done: false as const, value: readAlready.shift()! } : await rest.next();
      if (next.done) break;
      send(next.value, ++partNumber);
    }
  } catch (error) {
    // The parts could not be read on.
    failure ??= error;
    cancel.abort();
  }
  // Cancelled requests settle at once; every part must have settled before the abort, or a
  // part finishing after it would be stored again.
  await Promise.all(inFlight);

  if (!stops.aborted) {
    completed.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: completed } }), { abortSignal: options.signal });
    options.open.delete(uploadId);
    return;
  }
  await abortUpload(client, { Bucket, Key }, uploadId, options.open).catch(() => undefined);
  throw failure ?? abortError();
}

/** Aborts one multipart upload (never cancelled by the cut-off: it is the clean-up) and forgets it. */
export async function abortUpload(client: S3Client, target: MultipartTarget, uploadId: string, open: Map<string, string>): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ ...target, UploadId: uploadId }), { abortSignal: AbortSignal.timeout(ABORT_TIMEOUT_MS) });
  } catch (error) {
    if ((error as Error).name !== 'NoSuchUpload') throw error;
  }
  open.delete(uploadId);
}
