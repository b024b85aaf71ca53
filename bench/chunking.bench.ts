import { createHash, randomFillSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ContentChunker, SNAPSHOT_CHUNK_SIZES } from '../src/snapshots/chunker.js';
import { flag } from './lib/args.js';

/**
 * Content-defined chunking plus SHA-256 of every chunk, against SHA-256 alone over the same
 * bytes (what storing a file without dedup costs at least), in one run: one thread, then one
 * worker thread per core each on its own slice (as separate files would be). Goal (issue 14):
 * chunking and hashing never bottleneck sync, >= 1 GB/s over the threads the agent uses.
 *
 * npm run bench -- chunking [--mib 512] [--rounds 3]
 */

/** Chunks `data` and hashes each chunk; returns the number of chunks. */
function chunkAndHash(data: Uint8Array): number {
  const chunker = new ContentChunker(SNAPSHOT_CHUNK_SIZES);
  let chunks = 0;
  const hash = (chunk: Uint8Array) => {
    createHash('sha256').update(chunk).digest();
    chunks += 1;
  };
  // 8 MiB pieces, as a file is read.
  for (let at = 0; at < data.length; at += 8 << 20) chunker.push(data.subarray(at, Math.min(data.length, at + (8 << 20)))).forEach(hash);
  chunker.end().forEach(hash);
  return chunks;
}

function hashOnly(data: Uint8Array): void {
  createHash('sha256').update(data).digest();
}

function timeMs(work: () => void): number {
  const start = performance.now();
  work();
  return performance.now() - start;
}

/** Each worker gets its own slice of one shared buffer and chunks it. */
async function inWorkers(shared: SharedArrayBuffer, threads: number): Promise<number> {
  const slice = Math.floor(shared.byteLength / threads);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: threads }, (_, index) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: { shared, from: index * slice, to: (index + 1) * slice } });
      return new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve(void worker.terminate()));
        worker.once('error', reject);
      });
    }),
  );
  return performance.now() - start;
}

if (!isMainThread) {
  const { shared, from, to } = workerData as { shared: SharedArrayBuffer; from: number; to: number };
  chunkAndHash(new Uint8Array(shared, from, to - from));
  parentPort!.postMessage('done');
}

export default async function main(args: string[]): Promise<void> {
  const mib = Number(flag(args, '--mib') ?? 512);
  const rounds = Number(flag(args, '--rounds') ?? 3);
  const threads = availableParallelism();
  const shared = new SharedArrayBuffer(mib << 20);
  const data = new Uint8Array(shared);
  randomFillSync(data);
  const rate = (ms: number) => (data.length / 1e6 / (ms / 1000)).toFixed(0);
  // Also the JIT's warm-up: the first pass runs before the scan loop is optimized.
  const chunks = chunkAndHash(data);
  console.log(`${mib} MiB of random bytes; chunk sizes ${JSON.stringify(SNAPSHOT_CHUNK_SIZES)}: ${chunks} chunks, mean ${((data.length / chunks) / 1024).toFixed(0)} KiB`);
  console.log('round | sha256 alone, 1 thread | chunk + sha256, 1 thread | ratio | chunk + sha256, ' + `${threads} threads | MB/s`);
  for (let round = 1; round <= rounds; round += 1) {
    const hashMs = timeMs(() => hashOnly(data));
    const chunkMs = timeMs(() => chunkAndHash(data));
    const workersMs = await inWorkers(shared, threads);
    console.log(`${round} | ${rate(hashMs)} MB/s | ${rate(chunkMs)} MB/s | ${(hashMs / chunkMs).toFixed(2)} | ${rate(workersMs)} MB/s`);
  }
}
