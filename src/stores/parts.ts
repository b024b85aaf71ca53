import { Readable } from 'node:stream';
import { crc32 } from '@node-rs/crc32';

/**
 * A run of an object's bytes with the CRC32 of those bytes. A store is handed an object as
 * parts of its `partSize` (the last may be shorter): the S3 store sends each as one part of a
 * multipart upload, the others stream them.
 */
export interface Part {
  bytes: Buffer;
  /** CRC32 (IEEE, as S3's x-amz-checksum-crc32) of `bytes`. */
  crc32: number;
  /** Hands `bytes` back for reuse once the store no longer needs them; it must not touch them after. */
  release?: () => void;
}

export type Parts = AsyncIterable<Part> | Iterable<Part>;

/** A CRC32 as S3's x-amz-checksum-crc32 header: big-endian, in base64. */
export function crc32Header(crc32: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32 >>> 0);
  return bytes.toString('base64');
}

/** One buffer as a single part (a manifest, a small object). */

export function onePart(bytes: Buffer): Part[] {
  return [{ bytes, crc32: crc32(bytes) }];
}

/**
 * Cuts a stream (an archive being produced) into parts of `partSize`, copying each byte once
 * into its part. CRC32 by @node-rs/crc32: 14-15 GB/s here (SIMD), against 2.1-2.8 GB/s for
 * node:zlib's crc32.
 */
export async function* cutIntoParts(stream: Readable, partSize: number): AsyncGenerator<Part> {
  let part = Buffer.allocUnsafe(partSize);
  let filled = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let offset = 0;
    while (offset < chunk.length) {
      const copied = chunk.copy(part, filled, offset);
      filled += copied;
      offset += copied;
      if (filled === partSize) {
        yield { bytes: part, crc32: crc32(part) };
        part = Buffer.allocUnsafe(partSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) {
    const last = part.subarray(0, filled);
    yield { bytes: last, crc32: crc32(last) };
  }
}

/** The bytes of `parts` as a stream, for stores whose SDK takes one. Destroying it stops the parts. */
export function streamOfParts(parts: Parts): Readable {
  return Readable.from(
    (async function* () {
      for await (const part of parts) yield part.bytes;
    })(),
    { objectMode: false },
  );
}
