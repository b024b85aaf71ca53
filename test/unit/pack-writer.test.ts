import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { silentLogger } from '../../src/lib/log.js';
import { PackWriter, type PackedChunk } from '../../src/snapshots/pack-writer.js';
import { packName } from '../../src/snapshots/repository.js';
import { parseLocation, type StoreLocation } from '../../src/stores/location.js';
import { openStore } from '../../src/stores/registry.js';
import type { ObjectStore } from '../../src/stores/types.js';

let dir: string;
let location: StoreLocation;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'preemptd-pack-writer-'));
  location = parseLocation(`file://${dir}/`);
  store = await openStore(location, { partSize: 1 << 20, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

interface TestChunk {
  sha256: string;
  crc32: number;
  bytes: Buffer;
}

function chunk(index: number, size: number): TestChunk {
  const bytes = Buffer.alloc(size, index % 251);
  bytes.writeUInt32BE(index);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), crc32: crc32(bytes), bytes };
}

/** Copies `one` into the open pack whole. */
const addChunk = (packs: PackWriter, one: TestChunk) => packs.add(one.sha256, [one.bytes], one.crc32);

async function packsStored(): Promise<string[]> {
  return (await readdir(join(dir, 'packs')).catch(() => [] as string[])).filter((name) => !name.endsWith('.partial'));
}

/** The bytes a located chunk names, read back by its range. */
async function readBack({ chunk: stored }: PackedChunk): Promise<Buffer> {
  const [, size, pack, offset] = stored as [string, number, string, number];
  const parts: Buffer[] = [];
  for await (const part of await store.get(`${packName(pack)}`, { offset, length: size })) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Whether `promise` has settled once everything already queued has run (no clock involved). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

function writer(options: { targetBytes: number; maxInFlight?: number; on?: ObjectStore }): PackWriter {
  return new PackWriter({ store: options.on ?? store, location, signal: new AbortController().signal, maxInFlight: options.maxInFlight ?? 4, targetBytes: options.targetBytes });
}

test('fills each pack to the target, chunks back to back (each given in pieces), and every chunk reads back from its range', async () => {
  const packs = writer({ targetBytes: 1000 });
  const chunks = Array.from({ length: 10 }, (_, index) => chunk(index, 300));
  const added: PackedChunk[] = [];
  for (const { sha256, crc32: crc, bytes } of chunks) added.push(await packs.add(sha256, [bytes.subarray(0, 100), bytes.subarray(100, 101), bytes.subarray(101, 101), bytes.subarray(101)], crc));
  await packs.flush();
  await Promise.all(added.map((one) => one.stored));
  expect(added.map(({ chunk: [, , , offset] }) => offset)).toEqual([0, 300, 600, 0, 300, 600, 0, 300, 600, 0]);
  expect(new Set(added.map(({ chunk: [, , pack] }) => pack)).size).toBe(4);
  expect((await packsStored()).length).toBe(4);
  for (const [index, one] of added.entries()) expect((await readBack(one)).equals(chunks[index]!.bytes)).toBe(true);
  expect(added[0]!.chunk.slice(0, 2)).toEqual([chunks[0]!.sha256, 300]);
});

test('chunks in shared memory (the reading threads\' parts), at every alignment and of 1.5 MiB, read back exactly', async () => {
  const packs = writer({ targetBytes: 8 * 1024 * 1024 });
  const shared = Buffer.from(new SharedArrayBuffer(4 * 1024 * 1024));
  for (let at = 0; at < shared.length; at += 4) shared.writeUInt32LE((at * 2654435761) >>> 0, at);
  // Sources at each of 8 alignments, into pack offsets that follow odd sizes.
  const spans = [...Array.from({ length: 8 }, (_, index) => ({ start: 1000 * index + index, size: 777 + index })), { start: 100_003, size: 1.5 * 1024 * 1024 }];
  const added: PackedChunk[] = [];
  for (const { start, size } of spans) {
    const bytes = shared.subarray(start, start + size);
    added.push(await packs.add(createHash('sha256').update(bytes).digest('hex'), [bytes.subarray(0, 5), bytes.subarray(5)], crc32(bytes)));
  }
  await packs.flush();
  await Promise.all(added.map((one) => one.stored));
  for (const [index, one] of added.entries()) expect((await readBack(one)).equals(shared.subarray(spans[index]!.start, spans[index]!.start + spans[index]!.size))).toBe(true);
});

test('a chunk larger than the target gets a pack of its own size', async () => {
  const packs = writer({ targetBytes: 100 });
  const big = chunk(1, 250);
  const added = await addChunk(packs, big);
  await packs.flush();
  await added.stored;
  expect((await readBack(added)).equals(big.bytes)).toBe(true);
});

test('a single small file does not wait for a pack nobody else fills: it is stored once the file ends', async () => {
  const packs = writer({ targetBytes: 1 << 20 });
  const feed = packs.feed();
  const one = chunk(1, 100);
  const added = await addChunk(packs, one);
  expect(await settled(added.stored)).toBe(false);
  feed.end();
  await added.stored;
  expect(await packsStored()).toEqual([added.chunk[2]]);
});

test('many small files share a pack, stored once the last file being read has offered all its chunks', async () => {
  const packs = writer({ targetBytes: 1 << 20 });
  const feeds = Array.from({ length: 8 }, () => packs.feed());
  const added = await Promise.all(feeds.map(async (feed, index) => [await addChunk(packs, chunk(2 * index, 100)), await addChunk(packs, chunk(2 * index + 1, 50))]));
  for (const feed of feeds.slice(0, 7)) feed.end();
  // One file still offering: the files waiting for the pack wait for it, not for a flush.
  expect(await settled(added[0]![0]!.stored)).toBe(false);
  feeds[7]!.end();
  await Promise.all(added.flat().map((one) => one.stored));
  expect(new Set(added.flat().map(({ chunk: [, , pack] }) => pack)).size).toBe(1);
  expect((await packsStored()).length).toBe(1);
  for (const [index, [first]] of added.entries()) expect((await readBack(first!)).equals(chunk(2 * index, 100).bytes)).toBe(true);
});

test('a file still being read holds the open pack (it may fill it), not a pack already full', async () => {
  const packs = writer({ targetBytes: 150 });
  const writing = packs.feed();
  const reading = packs.feed();
  const full = await addChunk(packs, chunk(3, 100));
  const last = await addChunk(packs, chunk(4, 100));
  writing.end();
  await full.stored;
  expect(await settled(last.stored)).toBe(false);
  reading.end();
  reading.end();
  await last.stored;
  expect((await packsStored()).length).toBe(2);
});

test('a failed put rejects the chunks of its pack only, and flush still resolves', async () => {
  let puts = 0;
  const failing: ObjectStore = { ...store, put: (key, parts, options) => ((puts += 1) === 1 ? Promise.reject(new Error('503 Slow Down')) : store.put(key, parts, options)) };
  const packs = writer({ targetBytes: 200, on: failing });
  const added: PackedChunk[] = [];
  for (let index = 0; index < 4; index += 1) added.push(await addChunk(packs, chunk(index, 100)));
  await packs.flush();
  await expect(added[0]!.stored).rejects.toThrow('503 Slow Down');
  await expect(added[1]!.stored).rejects.toThrow('503 Slow Down');
  await expect(added[2]!.stored).resolves.toBeUndefined();
  await expect(added[3]!.stored).resolves.toBeUndefined();
  expect(await packsStored()).toEqual([added[2]!.chunk[2]]);
});

test('holds at most maxInFlight packs being stored: a chunk that needs another waits for one to be stored', async () => {
  const held: (() => void)[] = [];
  let storing = 0;
  let most = 0;
  const slow: ObjectStore = {
    ...store,
    put: async (key, parts, options) => {
      storing += 1;
      most = Math.max(most, storing);
      await new Promise<void>((resolve) => held.push(resolve));
      await store.put(key, parts, options);
      storing -= 1;
    },
  };
  const packs = writer({ targetBytes: 100, maxInFlight: 2, on: slow });
  await addChunk(packs, chunk(1, 100));
  await addChunk(packs, chunk(2, 100));
  const third = addChunk(packs, chunk(3, 100));
  expect(await settled(third)).toBe(false);
  expect(held.length).toBe(2);
  held.shift()!();
  await third;
  const flushed = packs.flush();
  while (held.length < 2) await new Promise((resolve) => setImmediate(resolve));
  for (const release of held.splice(0)) release();
  await flushed;
  expect(most).toBe(2);
  expect((await packsStored()).length).toBe(3);
});

test('an aborted writer refuses chunks, and its pack put is stopped', async () => {
  const stop = new AbortController();
  const packs = new PackWriter({ store, location, signal: stop.signal, maxInFlight: 1, targetBytes: 1000 });
  const added = await addChunk(packs, chunk(1, 100));
  stop.abort();
  await expect(addChunk(packs, chunk(2, 100))).rejects.toThrow();
  await packs.flush();
  await expect(added.stored).rejects.toThrow();
  expect(await packsStored()).toEqual([]);
});

test('a pack buffer the store hands back (Part.release) fills a later pack; one a failed put kept is never reused', async () => {
  /** Where each put's bytes lie in memory (small buffers share Node's pool, so the offset tells them apart). */
  const buffers: { memory: ArrayBufferLike; at: number }[] = [];
  let failNext = false;
  const recording: ObjectStore = {
    ...store,
    put: async (key, parts, options) => {
      for (const part of parts as Iterable<{ bytes: Buffer }>) buffers.push({ memory: part.bytes.buffer, at: part.bytes.byteOffset });
      if (failNext) {
        failNext = false;
        throw new Error('refused');
      }
      return store.put(key, parts, options);
    },
  };
  const packs = writer({ targetBytes: 1000, maxInFlight: 1, on: recording });
  const stored: PackedChunk[] = [];
  for (let index = 0; index < 3; index += 1) {
    stored.push(await addChunk(packs, chunk(index, 600)));
    await packs.flush();
  }
  failNext = true;
  const lost = await addChunk(packs, chunk(3, 600));
  await packs.flush();
  await expect(lost.stored).rejects.toThrow('refused');
  const after = await addChunk(packs, chunk(4, 600));
  await packs.flush();
  await after.stored;
  // The file store released each stored pack: one buffer served all; the refused one's was not taken back.
  const same = (a: (typeof buffers)[number], b: (typeof buffers)[number]) => a.memory === b.memory && a.at === b.at;
  expect(buffers.slice(0, 4).map((buffer) => same(buffer, buffers[0]!))).toEqual([true, true, true, true]);
  expect(same(buffers[4]!, buffers[3]!)).toBe(false);
  for (const [index, packed] of [...stored, after].entries()) expect((await readBack(packed)).equals(chunk(index === 3 ? 4 : index, 600).bytes)).toBe(true);
});

test('addView stores the memory it is given as a pack of its own, not copied, and hands it back only once stored', async () => {
  const chunks = [chunk(1, 300), chunk(2, 200), chunk(3, 100)];
  const memory = Buffer.concat(chunks.map(({ bytes }) => bytes));
  let handedBack = 0;
  let sent: Buffer | undefined;
  let finish!: () => void;
  const watching: ObjectStore = {
    ...store,
    put: async (key, parts, options) => {
      sent = (parts as { bytes: Buffer }[])[0]!.bytes;
      await new Promise<void>((resolve) => (finish = resolve));
      await store.put(key, parts, options);
    },
  };
  const packs = writer({ targetBytes: 1000, on: watching });
  const open = await addChunk(packs, chunk(9, 50));
  const added = await packs.addView(chunks.map(({ sha256, crc32: crc, bytes }) => ({ sha256, size: bytes.length, crc32: crc })), memory, () => (handedBack += 1));
  expect(sent!.buffer).toBe(memory.buffer);
  expect(sent!.byteOffset).toBe(memory.byteOffset);
  expect(added.map(({ chunk: [, size, , offset] }) => [size, offset])).toEqual([
    [300, 0],
    [200, 300],
    [100, 500],
  ]);
  expect(new Set(added.map(({ chunk: [, , pack] }) => pack)).size).toBe(1);
  expect(added[0]!.chunk[2]).not.toBe(open.chunk[2]);
  expect(handedBack).toBe(0);
  finish();
  await Promise.all(added.map((one) => one.stored));
  expect(handedBack).toBe(1);
  for (const [index, one] of added.entries()) expect((await readBack(one)).equals(chunks[index]!.bytes)).toBe(true);
  const flushed = packs.flush();
  while (!finish) await new Promise((resolve) => setImmediate(resolve));
  finish();
  await flushed;
  expect((await readBack(open)).equals(chunk(9, 50).bytes)).toBe(true);
});

test('a view pack whose put fails rejects its chunks and never hands its memory back (a request may still hold it)', async () => {
  const failing: ObjectStore = { ...store, put: () => Promise.reject(new Error('503 Slow Down')) };
  const packs = writer({ targetBytes: 1000, on: failing });
  let handedBack = 0;
  const one = chunk(1, 100);
  const [added] = await packs.addView([{ sha256: one.sha256, size: 100, crc32: one.crc32 }], one.bytes, () => (handedBack += 1));
  await expect(added!.stored).rejects.toThrow('503 Slow Down');
  expect(handedBack).toBe(0);
});

test("each pack goes to the store with the CRC32 of its bytes, joined from its chunks' (copied in pieces, or a view)", async () => {
  const puts: { bytes: Buffer; crc32: number }[] = [];
  const recording: ObjectStore = {
    ...store,
    put: async (key, parts, options) => {
      for (const part of parts as Iterable<{ bytes: Buffer; crc32: number }>) puts.push({ bytes: Buffer.from(part.bytes), crc32: part.crc32 });
      return store.put(key, parts, options);
    },
  };
  const packs = writer({ targetBytes: 1000, on: recording });
  const copied = [chunk(1, 300), chunk(2, 4), chunk(3, 500), chunk(4, 400)];
  for (const { sha256, crc32: crc, bytes } of copied) await packs.add(sha256, [bytes.subarray(0, 7), bytes.subarray(7)], crc);
  const viewed = [chunk(5, 250), chunk(6, 333)];
  await packs.addView(viewed.map(({ sha256, crc32: crc, bytes }) => ({ sha256, size: bytes.length, crc32: crc })), Buffer.concat(viewed.map(({ bytes }) => bytes)), () => undefined);
  await packs.flush();
  expect(puts.length).toBe(3);
  for (const put of puts) expect(put.crc32).toBe(crc32(put.bytes));
});
