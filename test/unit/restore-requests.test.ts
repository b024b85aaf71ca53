import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import type { ManifestFile, StoredChunk } from '../../src/snapshots/manifest.js';
import { FileReader } from '../../src/snapshots/read.js';
import { RequestBuffers } from '../../src/snapshots/restore-buffers.js';
import { BYTES_AHEAD, chunkedBody, REQUESTS_AHEAD } from '../../src/snapshots/restore-chunks.js';
import { chunkRequests, MAX_REQUEST_BYTES } from '../../src/snapshots/restore-requests.js';
import { parseLocation } from '../../src/stores/location.js';
import { openStore } from '../../src/stores/registry.js';
import type { ByteRange } from '../../src/stores/types.js';
import { commitDedupSnapshot } from '../helpers/dedup-repository.js';
import { testBytes } from '../helpers/seed.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const PACK_A = 'a'.repeat(24);
const PACK_B = 'b'.repeat(24);
const sha = (n: number) => n.toString(16).padStart(64, '0');
const packed = (n: number, size: number, pack: string, offset: number): StoredChunk => [sha(n), size, pack, offset];

describe('chunkRequests', () => {
  test('chunks back to back in one pack share a request; a new pack, a gap, an overlap or a step back starts another', () => {
    const chunks = [
      packed(1, 100, PACK_A, 0),
      packed(2, 50, PACK_A, 100),
      packed(3, 10, PACK_A, 150),
      packed(4, 20, PACK_B, 160), // another pack
      packed(5, 30, PACK_B, 200), // a gap
      packed(6, 30, PACK_B, 210), // overlaps the one before
      packed(7, 30, PACK_B, 0), // goes back
      packed(8, 30, PACK_B, 30),
    ];
    expect(chunkRequests(chunks).map(({ home, range, chunks }) => ({ home, range, chunks: chunks.map(([hash]) => parseInt(hash, 16)) }))).toEqual([
      { home: `packs/${PACK_A}`, range: { offset: 0, length: 160 }, chunks: [1, 2, 3] },
      { home: `packs/${PACK_B}`, range: { offset: 160, length: 20 }, chunks: [4] },
      { home: `packs/${PACK_B}`, range: { offset: 200, length: 30 }, chunks: [5] },
      { home: `packs/${PACK_B}`, range: { offset: 210, length: 30 }, chunks: [6] },
      { home: `packs/${PACK_B}`, range: { offset: 0, length: 60 }, chunks: [7, 8] },
    ]);
  });

  test('a chunk stored alone is a request of its own, read whole, and breaks the run around it', () => {
    const chunks: StoredChunk[] = [packed(1, 10, PACK_A, 0), [sha(2), 10], packed(3, 10, PACK_A, 10)];
    expect(chunkRequests(chunks).map(({ home, range }) => ({ home, range }))).toEqual([
      { home: `packs/${PACK_A}`, range: { offset: 0, length: 10 } },
      { home: `chunks/00/${sha(2)}`, range: undefined },
      { home: `packs/${PACK_A}`, range: { offset: 10, length: 10 } },
    ]);
  });

  test('a run is cut at MAX_REQUEST_BYTES; a chunk larger than that is a request alone', () => {
    const quarter = MAX_REQUEST_BYTES / 4;
    const run = Array.from({ length: 9 }, (_, index) => packed(index, quarter, PACK_A, index * quarter));
    expect(chunkRequests(run).map((request) => request.range)).toEqual([
      { offset: 0, length: MAX_REQUEST_BYTES },
      { offset: MAX_REQUEST_BYTES, length: MAX_REQUEST_BYTES },
      { offset: 2 * MAX_REQUEST_BYTES, length: quarter },
    ]);
    const big = [packed(1, 10, PACK_A, 0), packed(2, MAX_REQUEST_BYTES + 1, PACK_A, 10), packed(3, 10, PACK_A, MAX_REQUEST_BYTES + 11)];
    expect(chunkRequests(big).map((request) => request.chunks.length)).toEqual([1, 1, 1]);
  });
});

describe('chunkedBody', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chunked-body-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** The repository's file store, with every read into a buffer it serves recorded (key and range) and the most in flight at once. */
  async function countingStore() {
    const location = parseLocation(`file://${dir}/`);
    const store = await openStore(location, { partSize: MIB, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
    const gets: { key: string; range: ByteRange | undefined }[] = [];
    const seen = { inFlight: 0, most: 0 };
    const getInto = store.getInto!.bind(store);
    store.getInto = async (key, range, into) => {
      gets.push({ key, range });
      seen.most = Math.max(seen.most, ++seen.inFlight);
      try {
        return await getInto(key, range, into);
      } finally {
        seen.inFlight -= 1;
      }
    };
    return { store, location, gets, seen };
  }

  async function body(file: ManifestFile) {
    const { store, location, gets, seen } = await countingStore();
    const pieces: Buffer[] = [];
    try {
      for await (const piece of chunkedBody(store, location, file)) pieces.push(piece);
    } finally {
      await store.close();
    }
    return { bytes: Buffer.concat(pieces), gets, seen };
  }

  const manifestFile = async (name: string, path: string) => ((JSON.parse(await readFile(join(dir, name), 'utf8')) as { files: ManifestFile[] }).files.find((file) => file.path === path))!;

  test('a file filling two packs comes in one ranged GET per pack, byte-identical', async () => {
    const content = testBytes(3 * MIB + 5);
    const name = commitDedupSnapshot(dir, { 'model.pt': content }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, { chunkBytes: 64 * KIB, home: () => 'pack', packBytes: 2 * MIB });
    const file = await manifestFile(name, 'model.pt');
    expect(file.chunks).toHaveLength(49);
    const { bytes, gets } = await body(file);
    expect(bytes.equals(content)).toBe(true);
    const packs = [...new Set(file.chunks!.map((chunk) => chunk[2]))];
    expect(gets).toEqual([
      { key: `packs/${packs[0]}`, range: { offset: 0, length: 2 * MIB } },
      { key: `packs/${packs[1]}`, range: { offset: 0, length: MIB + 5 } },
    ]);
  });

  test('a file mixing packed chunks and chunks stored alone restores; each stored-alone chunk is read whole', async () => {
    const content = testBytes(640 * KIB);
    // Chunks 0-3 packed, 4 alone, 5-9 packed: two runs around the lone chunk.
    const name = commitDedupSnapshot(dir, { 'mixed.pt': content }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, { chunkBytes: 64 * KIB, home: (index) => (index === 4 ? 'chunk' : 'pack') });
    const { bytes, gets } = await body(await manifestFile(name, 'mixed.pt'));
    expect(bytes.equals(content)).toBe(true);
    expect(gets.map(({ key, range }) => [key.split('/')[0], range])).toEqual([
      ['packs', { offset: 0, length: 256 * KIB }],
      ['chunks', undefined],
      ['packs', { offset: 256 * KIB, length: 320 * KIB }],
    ]);
  });

  test('with a pool, each request is read into a buffer given back when the next piece is asked for, and reused', async () => {
    const content = testBytes(12 * MIB + 3);
    const name = commitDedupSnapshot(dir, { 'model.pt': content }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, { chunkBytes: 256 * KIB, home: () => 'pack', packBytes: MIB });
    const file = await manifestFile(name, 'model.pt');
    const { store, location } = await countingStore();
    const copies: Buffer[] = [];
    const memory = new Set<ArrayBufferLike>();
    try {
      for await (const piece of chunkedBody(store, location, file, { buffers: new RequestBuffers(MIB) })) {
        copies.push(Buffer.from(piece));
        memory.add(piece.buffer);
      }
    } finally {
      await store.close();
    }
    expect(Buffer.concat(copies).equals(content)).toBe(true);
    expect(copies).toHaveLength(13);
    // REQUESTS_AHEAD fetching at once, plus the one being read: the 12 full packs share fewer buffers.
    expect(memory.size).toBeLessThanOrEqual(REQUESTS_AHEAD + 2);
  });

  test('with a hashing thread, the chunks of shared buffers are checked there; a corrupted one still fails, naming it', async () => {
    const content = testBytes(5 * MIB + 11);
    const name = commitDedupSnapshot(dir, { 'model.pt': content }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, { chunkBytes: 256 * KIB, home: () => 'pack', packBytes: 2 * MIB });
    const file = await manifestFile(name, 'model.pt');
    const { store, location } = await countingStore();
    const hashing = FileReader.start();
    const hashed: number[] = [];
    const reading = { buffers: new RequestBuffers(MIB), sha256s: (bytes: Buffer, sizes: number[]) => (hashed.push(sizes.length), hashing.sha256s(bytes, sizes)) };
    try {
      const copies: Buffer[] = [];
      for await (const piece of chunkedBody(store, location, file, reading)) copies.push(Buffer.from(piece));
      expect(Buffer.concat(copies).equals(content)).toBe(true);
      // Fetched in parallel: in any order.
      expect(hashed.sort()).toEqual([5, 8, 8]);

      const pack = join(dir, 'packs', file.chunks![9]![2] as string);
      const bytes = await readFile(pack);
      bytes[300 * KIB] = bytes[300 * KIB]! ^ 0xff;
      await writeFile(pack, bytes);
      const pieces = async () => {
        for await (const piece of chunkedBody(store, location, file, reading)) void piece;
      };
      await expect(pieces()).rejects.toThrow(`chunk ${file.chunks![9]![0]} (bytes ${256 * KIB}+${256 * KIB} of file://${dir}/packs/`);
    } finally {
      await hashing.close();
      await store.close();
    }
  });

  test('requests ahead of the writer hold at most BYTES_AHEAD', async () => {
    const content = testBytes(6 * BYTES_AHEAD / 4);
    // Packs of a quarter of BYTES_AHEAD: at most four fetched at once.
    const name = commitDedupSnapshot(dir, { 'big.pt': content }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' }, { chunkBytes: MIB, home: () => 'pack', packBytes: BYTES_AHEAD / 4 });
    const { bytes, gets, seen } = await body(await manifestFile(name, 'big.pt'));
    expect(bytes.equals(content)).toBe(true);
    expect(gets).toHaveLength(6);
    expect(seen.most).toBeLessThanOrEqual(4);
  });
});
