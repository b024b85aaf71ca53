import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

/**
 * A restore writing thread (see restore-writers.ts): checks each chunk's SHA-256 and writes it
 * at its offset in the file (pwrite on the descriptor the main thread opened), so hashing and
 * writing run beside the main thread's fetches. Blocking writes are fine: this thread does
 * nothing else. The chunk's bytes arrive in shared memory, not copied again.
 */
export interface ChunkWrite {
  id: number;
  fd: number;
  offset: number;
  /** The chunk is its first `length` bytes. */
  bytes: SharedArrayBuffer;
  length: number;
  sha256: string;
}

export type ChunkWritten =
  | { id: number; type: 'written' }
  /** The bytes' SHA-256 is not the chunk's name: nothing was written. */
  | { id: number; type: 'corrupted'; got: string }
  | { id: number; type: 'failed'; message: string };

function handle({ id, fd, offset, bytes, length, sha256 }: ChunkWrite): ChunkWritten {
  const view = new Uint8Array(bytes, 0, length);
  const got = createHash('sha256').update(view).digest('hex');
  if (got !== sha256) return { id, type: 'corrupted', got };
  try {
    for (let done = 0; done < view.length; ) done += writeSync(fd, view, done, view.length - done, offset + done);
    return { id, type: 'written' };
  } catch (error) {
    return { id, type: 'failed', message: error instanceof Error ? error.message : String(error) };
  }
}

// Chunks come in batches (restore-writers.ts posts those of one event loop turn together).
parentPort?.on('message', (requests: ChunkWrite[]) => parentPort!.postMessage(requests.map(handle)));
