import { lstat } from 'node:fs/promises';
import { crc32Combine, runningChecksum } from './checksum.js';
import { SNAPSHOT_CHUNK_SIZES } from './chunker.js';
import { cutRef, type CutRef, type SegmentCut } from './cut-chunks.js';
import { pathAfterRead, readResult, type FileRead, type ReadPart } from './file-read.js';
import type { FoundFile } from './walk.js';

/**
 * One large file cut into content-defined chunks on several reading threads at once, with
 * the chunks one thread cutting it whole would give (the chunks are a storage format).
 *
 * The file is read in segments, each cut on its own as if a chunk began at its start, and
 * read on past its end by OVERLAP. A segment's own cutting runs into the true one (the
 * file's, cut from its first byte) at the first chunk end both share: a chunk's end depends
 * only on where it starts and on the bytes, so from a shared end on both cut the same. Where
 * the previous segment's chunks (true, up to there) meet the next segment's in the overlap,
 * the file's chunks switch over; the one or two chunks across the join are hashed here.
 * Bytes without boundaries (zeros, cut every maxSize) may never meet: the next segment is
 * then read again from the last true chunk end, on one thread.
 *
 * Measured on the notice-time delta bench (sync-delta, 10 GiB, a changed 5 GiB file the sync
 * had not scanned): see docs/benchmarks.md.
 */

/**
 * Read past a segment's end to meet the next one's chunks. Over 507 joins in 512 MiB of random
 * bytes they met 221 KiB past the join at the median, 963 KiB at the 99th percentile and
 * 1157 KiB at most; the segment's last chunk, cut at the end of what was read, is left out.
 */
const OVERLAP = 2 * SNAPSHOT_CHUNK_SIZES.maxSize;

/** What to read and cut: a chunk is taken to begin at `start`; `skipFirst`, `last` and `hashUpTo` as cutSegment has them. */
export interface SegmentRequest {
  start: number;
  hashUpTo: number;
  readEnd: number;
  skipFirst: boolean;
  last: boolean;
}

/** A segment read and cut: bytes `start` to `readEnd` at the start of `part`. */
export interface Segment extends SegmentRequest {
  part: SharedArrayBuffer;
  cuts: SegmentCut[];
  /** Gives `part` back to the reader. */
  release(): void;
}

/** The largest segment read: one read again from up to a chunk before its start. */
export function segmentCapacity(segmentBytes: number): number {
  return segmentBytes + OVERLAP + SNAPSHOT_CHUNK_SIZES.maxSize;
}

/**
 * `file`, opened as `opened`, read from that size in segments by `read` (a file that shrank
 * meanwhile fails), `ahead()` of them at once; `closed` is called once the parts end. Its
 * checksum is CRC32, joined from the parts': one SHA-256 of a whole file cannot be spread over
 * threads.
 */
export function segmentedRead(
  file: FoundFile,
  opened: { size: number; mtimeMs: number },
  how: { segmentBytes: number; ahead: () => number; read: (request: SegmentRequest) => Promise<Segment>; closed: () => void },
): FileRead {
  const checksum = runningChecksum('crc32');
  async function* parts(): AsyncGenerator<ReadPart> {
    try {
      for await (const part of segmentedParts(opened.size, how.segmentBytes, how.ahead, how.read)) {
        checksum.update(part.bytes, part.crc32);
        yield part;
      }
    } finally {
      how.closed();
    }
  }
  return {
    parts: parts(),
    size: opened.size,
    result: async () => {
      const after = pathAfterRead(await lstat(file.source).catch(() => null));
      return readResult(file, opened, { checksum: checksum.digest(), bytesRead: opened.size, after, exactSize: false });
    },
  };
}

/**
 * The segments of a file of `size` bytes: `segmentBytes` each, the last reaching the end
 * (`last` also for a segment whose overlap does). The first begins a chunk; the others do not.
 */
function segmentsOf(size: number, segmentBytes: number): SegmentRequest[] {
  const segments: SegmentRequest[] = [];
  for (let start = 0; start < size; start += segmentBytes) {
    const end = Math.min(start + segmentBytes, size);
    const readEnd = Math.min(end + OVERLAP, size);
    const last = readEnd === size;
    segments.push({ start, hashUpTo: last ? size : end, readEnd, skipFirst: start > 0, last });
    if (last) break;
  }
  return segments;
}

/**
 * The file's bytes as parts whose chunks are the file's, each part ending on a
 * chunk end: at most `ahead()` segments are read at once by `read`, which runs each on a
 * reading thread. Iterate once; leaving early gives back every segment read.
 */
async function* segmentedParts(size: number, segmentBytes: number, ahead: () => number, read: (request: SegmentRequest) => Promise<Segment>): AsyncGenerator<ReadPart> {
  const segments = segmentsOf(size, segmentBytes);
  const reading: Promise<Segment>[] = [];
  let next = 0;
  const readAhead = () => {
    while (next < segments.length && reading.length < ahead()) {
      const pending = read(segments[next++]!);
      // Awaited in turn; one failing meanwhile must not go unhandled.
      pending.catch(() => undefined);
      reading.push(pending);
    }
  };
  const nextSegment = () => {
    readAhead();
    const pending = reading.shift()!;
    readAhead();
    return pending;
  };
  // The segment whose chunks are the file's from `from` on (an end of one of them, or its
  // start). A part is made before it is yielded, and handed over with its segment: a caller
  // that stops at a yield gives back what it was handed, this generator the rest.
  let current: Segment | undefined;
  try {
    current = await nextSegment();
    let from = 0;
    for (let index = 1; !current.last; index += 1) {
      const following = await nextSegment();
      const meet = meeting(current, from, following);
      if (meet !== undefined) {
        const handed = part(current, from, meet);
        [current, from] = [following, meet];
        yield handed;
        continue;
      }
      following.release();
      // No end in common: read the next segment again from current's last hashed chunk end on.
      const hashUpTo = current.hashUpTo;
      const resume = current.cuts.reduce((end, [cut]) => (cut <= hashUpTo && cut > end ? cut : end), from);
      const handed = resume > from ? part(current, from, resume) : undefined;
      if (!handed) current.release();
      current = undefined;
      if (handed) yield handed;
      current = await read({ ...segments[index]!, start: resume, skipFirst: false });
      from = resume;
    }
    const handed = part(current, from, size);
    current = undefined;
    yield handed;
  } finally {
    current?.release();
    for (const pending of reading) void pending.then((segment) => segment.release(), () => undefined);
  }
}

/** The first chunk end of `current` after `from` that is also a chunk end (or the start) of `following`. */
function meeting(current: Segment, from: number, following: Segment): number | undefined {
  const ends = new Set<number>([following.start, ...following.cuts.map(([end]) => end)]);
  return current.cuts.find(([end]) => end > from && ends.has(end))?.[0];
}

/**
 * Bytes `from` to `to` of `segment` as a part with their chunks (hashed here where the thread
 * did not) and CRC32, which gives the segment back once its user releases it.
 */
function part(segment: Segment, from: number, to: number): ReadPart {
  const bytes = Buffer.from(segment.part, from - segment.start, to - from);
  const chunks: CutRef[] = [];
  let partCrc32 = 0;
  let at = from;
  for (const cut of segment.cuts) {
    const end = cut[0];
    if (end <= from) continue;
    if (end > to) break;
    const chunk: CutRef = cut.length === 3 ? [cut[1], end - at, cut[2]] : cutRef(bytes.subarray(at - from, end - from));
    chunks.push(chunk);
    partCrc32 = crc32Combine(partCrc32, chunk[2], chunk[1]);
    at = end;
  }
  // Every caller ends a part on a chunk end of the segment: anything else is a bug here.
  if (at !== to) throw new Error(`segment at ${segment.start}: no chunk ends at ${to} (the last ends at ${at})`);
  return { bytes, crc32: partCrc32, chunks, release: () => segment.release() };
}
