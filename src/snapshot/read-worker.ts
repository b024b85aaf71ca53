import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';

/**
 * The reading thread (see read.ts): opens files, reads each once in chunks, hashes the chunks
 * with SHA-256, computes the CRC32 of every `partSize` part an S3 upload will cut, and hands
 * the chunks to the main thread by transfer (no copy). Blocking reads are fine here: this
 * thread does nothing else.
 */
export type ReadRequest =
  | { type: 'open'; id: number; path: string; padToSize: boolean; chunkSize: number; partSize: number }
  | { type: 'read'; id: number }
  | { type: 'finish'; id: number }
  | { type: 'close'; id: number };

export type ReadReply =
  | { type: 'opened'; id: number; size: number; mtimeMs: number }
  | { type: 'chunk'; id: number; chunk: ArrayBuffer; length: number }
  | { type: 'end'; id: number }
  /** CRC32 (base64, big-endian, as S3 wants it) of part `number` (1-based), once read. */
  | { type: 'part'; id: number; number: number; crc32: string }
  | { type: 'finished'; id: number; sha256: string; bytesRead: number; after: { size: number; mtimeMs: number } | null }
  | { type: 'error'; id: number; code: string | undefined; message: string };

interface OpenFile {
  fd: number;
  path: string;
  size: number;
  padToSize: boolean;
  chunkSize: number;
  /** Bytes handed out, padding included. */
  emitted: number;
  /** Bytes actually read from the file. */
  bytesRead: number;
  hash: Hash;
  partSize: number;
  /** CRC32 of the part being read so far, and its bytes. */
  partCrc: number;
  partBytes: number;
  partNumber: number;
}

const files = new Map<number, OpenFile>();
const reply = (message: ReadReply, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(message, transfer);

function handle(request: ReadRequest): void {
  if (request.type === 'open') {
    const fd = openSync(request.path, 'r');
    const info = fstatSync(fd);
    files.set(request.id, {
      fd,
      path: request.path,
      size: info.size,
      padToSize: request.padToSize,
      chunkSize: request.chunkSize,
      emitted: 0,
      bytesRead: 0,
      hash: createHash('sha256'),
      partSize: request.partSize,
      partCrc: 0,
      partBytes: 0,
      partNumber: 1,
    });
    reply({ type: 'opened', id: request.id, size: info.size, mtimeMs: info.mtimeMs });
    return;
  }
  const file = files.get(request.id);
  if (!file) {
    if (request.type !== 'close') reply({ type: 'error', id: request.id, code: undefined, message: 'file is not open' });
    return;
  }
  if (request.type === 'read') {
    const wanted = Math.min(file.chunkSize, file.size - file.emitted);
    const buffer = wanted > 0 ? Buffer.allocUnsafeSlow(wanted) : Buffer.alloc(0);
    const read = wanted > 0 ? readSync(file.fd, buffer, 0, wanted, file.emitted) : 0;
    // EOF before `size`: the file shrank. A tar entry must still be `size` long: pad with zeros.
    const length = read === 0 && file.padToSize ? buffer.fill(0).length : read;
    if (length === 0) {
      if (file.partBytes > 0 || file.partNumber === 1) partDone(request.id, file);
      reply({ type: 'end', id: request.id });
      return;
    }
    file.bytesRead += read;
    file.emitted += length;
    file.hash.update(buffer.subarray(0, length));
    addToParts(request.id, file, buffer.subarray(0, length));
    reply({ type: 'chunk', id: request.id, chunk: buffer.buffer as ArrayBuffer, length }, [buffer.buffer as ArrayBuffer]);
    return;
  }
  closeSync(file.fd);
  files.delete(request.id);
  if (request.type === 'finish') {
    let after: { size: number; mtimeMs: number } | null = null;
    try {
      const info = statSync(file.path);
      after = { size: info.size, mtimeMs: info.mtimeMs };
    } catch {
      after = null;
    }
    reply({ type: 'finished', id: request.id, sha256: file.hash.digest('hex'), bytesRead: file.bytesRead, after });
  }
}

/** Feeds bytes into the running part CRCs, closing each part at a `partSize` boundary. */
function addToParts(id: number, file: OpenFile, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) {
    const take = Math.min(file.partSize - file.partBytes, data.length - offset);
    file.partCrc = crc32(data.subarray(offset, offset + take), file.partCrc);
    file.partBytes += take;
    offset += take;
    if (file.partBytes === file.partSize) partDone(id, file);
  }
}

function partDone(id: number, file: OpenFile): void {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(file.partCrc >>> 0);
  reply({ type: 'part', id, number: file.partNumber, crc32: bytes.toString('base64') });
  file.partNumber += 1;
  file.partCrc = 0;
  file.partBytes = 0;
}

parentPort?.on('message', (request: ReadRequest) => {
  try {
    handle(request);
  } catch (error) {
    const failed = files.get(request.id);
    if (failed) {
      files.delete(request.id);
      try {
        closeSync(failed.fd);
      } catch {
        // Already failing: the read error is the one worth reporting.
      }
    }
    reply({ type: 'error', id: request.id, code: (error as NodeJS.ErrnoException).code, message: (error as Error).message });
  }
});
