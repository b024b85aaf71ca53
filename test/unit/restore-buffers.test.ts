import { MAX_FREE_BYTES, RequestBuffers } from '../../src/snapshots/restore-buffers.js';

const MIB = 1024 * 1024;

test('a request of pooledBytes or more gets shared memory, reused once given back; a smaller one gets memory of its own', () => {
  const buffers = new RequestBuffers(MIB);
  const first = buffers.take(2 * MIB);
  expect(first.buffer).toBeInstanceOf(SharedArrayBuffer);
  expect(first.length).toBe(2 * MIB);
  buffers.release(first);
  const second = buffers.take(1.5 * MIB);
  expect(second.buffer).toBe(first.buffer);
  expect(second.length).toBe(1.5 * MIB);

  const small = buffers.take(MIB - 1);
  expect(small.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  buffers.release(small);
  expect(buffers.take(MIB - 1).buffer).not.toBe(small.buffer);
});

test('the smallest free buffer that fits is taken, so a large one stays for a large request', () => {
  const buffers = new RequestBuffers(MIB);
  const large = buffers.take(16 * MIB);
  const medium = buffers.take(3 * MIB);
  buffers.release(large);
  buffers.release(medium);
  expect(buffers.take(2 * MIB).buffer).toBe(medium.buffer);
  expect(buffers.take(10 * MIB).buffer).toBe(large.buffer);
});

test(`free buffers are kept up to ${MAX_FREE_BYTES / MIB} MiB; more given back are dropped`, () => {
  const buffers = new RequestBuffers(MIB);
  const count = MAX_FREE_BYTES / (16 * MIB) + 1;
  const taken = Array.from({ length: count }, () => buffers.take(16 * MIB));
  for (const buffer of taken) buffers.release(buffer);
  const again = new Set(Array.from({ length: count }, () => buffers.take(16 * MIB).buffer));
  expect(taken.filter((buffer) => again.has(buffer.buffer))).toHaveLength(count - 1);
});
