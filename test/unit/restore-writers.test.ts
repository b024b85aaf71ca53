import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkWriters } from '../../src/snapshots/restore-writers.js';
import { testBytes } from '../helpers/seed.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'restore-writers-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('chunks written out of order on two threads land at their offsets; a corrupted one is not written', async () => {
  const data = testBytes(64 * 1024);
  const writers = ChunkWriters.start(2);
  const fd = openSync(join(dir, 'f'), 'w');
  try {
    const pieces = [3, 1, 0, 2].map((index) => data.subarray(index * 16384, (index + 1) * 16384));
    const writing = [3, 1, 0, 2].map((index, at) => writers.write(fd, index * 16384, [pieces[at]!], 16384, sha256(pieces[at]!)));
    writers.flush();
    const replies = await Promise.all(writing);
    expect(replies.map((reply) => reply.type)).toEqual(['written', 'written', 'written', 'written']);
    const bad = writers.write(fd, 64 * 1024, [data.subarray(0, 60), data.subarray(60, 100)], 100, sha256(data.subarray(1, 101)));
    writers.flush();
    expect(await bad).toMatchObject({ type: 'corrupted', got: sha256(data.subarray(0, 100)) });
  } finally {
    closeSync(fd);
    await writers.close();
  }
  expect(readFileSync(join(dir, 'f'))).toEqual(data);
});

test('threads that stop fail the chunks they held and every later one, saying so: nothing waits forever', async () => {
  const writers = ChunkWriters.start(1);
  const fd = openSync(join(dir, 'f'), 'w');
  try {
    const bytes = testBytes(4 * 1024 * 1024);
    const held = writers.write(fd, 0, [bytes], bytes.length, sha256(bytes));
    await writers.close();
    expect(await held).toMatchObject({ type: expect.stringMatching(/^(written|failed)$/) });
    expect(await writers.write(fd, 0, [bytes], bytes.length, sha256(bytes))).toEqual({ id: -1, type: 'failed', message: 'the restore writing threads were closed' });
  } finally {
    closeSync(fd);
  }
});
