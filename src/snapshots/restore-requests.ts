import type { StoredChunk } from './manifest.js';
import { chunkHome, PACK_TARGET_BYTES } from './repository.js';

/**
 * The most bytes one GET of a pack asks for: twice the packer's target, so the chunks a file
 * has back to back in one pack (a whole pack, when the file filled it) come in one request,
 * and requests stay in the 8-16 MiB object stores serve at full speed per connection, while a
 * file restored from a few huge runs still spreads over several requests fetched in parallel.
 */
export const MAX_REQUEST_BYTES = 2 * PACK_TARGET_BYTES;

/** One GET restore makes for a file: an object (a pack's byte range, or a chunk of its own) and the chunks it holds, in order. */
export interface ChunkRequest {
  /** The object read: `packs/<id>` or `chunks/ab/<sha256>`. */
  home: string;
  /** The range of the pack read; undefined for a chunk stored alone (read whole). */
  range: { offset: number; length: number } | undefined;
  chunks: StoredChunk[];
}

/**
 * A file's chunks as the requests that fetch them, in file order: consecutive chunks stored
 * back to back in one pack (each starting where the one before ended) share a request of at
 * most MAX_REQUEST_BYTES (a chunk larger than that alone is its own); any other chunk, a
 * chunk of its own (version 1) or one whose range overlaps or goes back, is a request of its own.
 */
export function chunkRequests(chunks: readonly StoredChunk[]): ChunkRequest[] {
  const requests: ChunkRequest[] = [];
  let open: ChunkRequest | undefined;
  for (const chunk of chunks) {
    if (chunk.length !== 4) {
      open = undefined;
      requests.push({ home: chunkHome(chunk), range: undefined, chunks: [chunk] });
      continue;
    }
    const [, size, , offset] = chunk;
    const home = chunkHome(chunk);
    if (open?.range && open.home === home && open.range.offset + open.range.length === offset && open.range.length + size <= MAX_REQUEST_BYTES) {
      open.range.length += size;
      open.chunks.push(chunk);
      continue;
    }
    open = { home, range: { offset, length: size }, chunks: [chunk] };
    requests.push(open);
  }
  return requests;
}

/** The bytes a request reads. */
export function requestBytes(request: ChunkRequest): number {
  return request.chunks.reduce((sum, [, size]) => sum + size, 0);
}
