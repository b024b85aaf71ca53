import { createHash } from 'node:crypto';
import { crc32 } from '@node-rs/crc32';
// '.ts' as written: the reading thread loads this module (see read-worker.ts).
import { crc32Combine } from './checksum.ts';
import { ContentChunker, SNAPSHOT_CHUNK_SIZES } from './chunker.ts';

/**
 * The reading threads' cutting: a file's bytes into content-defined chunks (chunker.ts), each
 * with the SHA-256 a dedup manifest names it by and the CRC32 its pack joins into its own.
 */

/**
 * A chunk as cut: its SHA-256 (hex) and size, as a dedup manifest lists it, and its CRC32,
 * which the pack it goes into joins into its own (crc32Combine).
 */
export type CutRef = [sha256: string, size: number, crc32: number];

/**
 * Where a chunk of a segment ends (an offset in the file), with its SHA-256 and CRC32 when the
 * thread hashed it: a chunk the file's cutting may not keep is left unhashed (see cutSegment).
 */
export type SegmentCut = [end: number] | [end: number, sha256: string, crc32: number];

export const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A chunk's ref from its bytes, read twice: for its SHA-256 and its CRC32. */
export const cutRef = (chunk: Uint8Array): CutRef => [sha256Of(chunk), chunk.length, crc32(chunk)];

/** A file being cut part after part: the chunker, and how many bytes of earlier parts it holds (in no chunk yet). */
export interface Cutting {
  chunker: ContentChunker;
  heldLength: number;
}

export function startCutting(): Cutting {
  return { chunker: new ContentChunker(SNAPSHOT_CHUNK_SIZES), heldLength: 0 };
}

/**
 * Cuts a part and returns its CRC32 and the chunks it completes. The CRC32 pass goes piece
 * by piece (a piece: a chunk's bytes in this part, and the part's end no chunk has taken
 * yet), so each chunk comes with its CRC32 too: the main thread joins a pack's from its
 * chunks' instead of reading the pack again (0.08 CPU-s per GB stored). Bytes held from
 * earlier parts are read again for the chunks they are in: under maxSize per part.
 */
export function cutPart(cutting: Cutting, bytes: Uint8Array): { crc32: number; chunks: CutRef[] } {
  const chunks: CutRef[] = [];
  let partCrc32 = 0;
  let taken = 0;
  cutting.chunker.push(bytes, (chunk) => {
    const fromEarlier = Math.min(cutting.heldLength, chunk.length);
    cutting.heldLength -= fromEarlier;
    const piece = chunk.subarray(fromEarlier);
    const pieceCrc32 = crc32(piece);
    partCrc32 = crc32Combine(partCrc32, pieceCrc32, piece.length);
    taken += piece.length;
    const chunkCrc32 = fromEarlier > 0 ? crc32Combine(crc32(chunk.subarray(0, fromEarlier)), pieceCrc32, piece.length) : pieceCrc32;
    chunks.push([sha256Of(chunk), chunk.length, chunkCrc32]);
  });
  const rest = bytes.subarray(taken);
  cutting.heldLength += rest.length;
  return { crc32: crc32Combine(partCrc32, crc32(rest), rest.length), chunks };
}

/** The file's last chunks: what the chunker held, a few, each read for its CRC32. */
export function lastChunks(cutting: Cutting): CutRef[] {
  const chunks: CutRef[] = [];
  cutting.chunker.end((chunk) => chunks.push(cutRef(chunk)));
  cutting.heldLength = 0;
  return chunks;
}

/**
 * Cuts `bytes`, the file's bytes from offset `start`, as if a chunk began at `start`, and
 * returns where each chunk ends. Chunks are hashed when they end by `hashUpTo`, except the
 * first when `skipFirst` (`start` is then no known boundary of the file's cutting, so that
 * chunk is rarely one of the file's). `last`: the bytes reach the file's end, whose last chunk
 * counts; otherwise the end of `bytes` is no boundary, so the chunk cut there is left out.
 */
export function cutSegment(bytes: Uint8Array, start: number, hashUpTo: number, skipFirst: boolean, last: boolean): SegmentCut[] {
  const chunker = new ContentChunker(SNAPSHOT_CHUNK_SIZES);
  const cuts: SegmentCut[] = [];
  let from = start;
  const take = (chunk: Uint8Array) => {
    const end = from + chunk.length;
    if (end <= hashUpTo && !(skipFirst && cuts.length === 0)) {
      const [sha256, , chunkCrc32] = cutRef(chunk);
      cuts.push([end, sha256, chunkCrc32]);
    } else cuts.push([end]);
    from = end;
  };
  chunker.push(bytes, take);
  chunker.end(take);
  if (!last && cuts.length > 0) cuts.pop();
  return cuts;
}
