import { crc32 } from '@node-rs/crc32';
import { crc32Combine, runningChecksum } from '../../src/snapshots/checksum.js';
import { testBytes } from '../helpers/seed.js';

/**
 * crc32Combine joins two CRC32s as the CRC32 of the bytes back to back; the reading threads
 * use it to fold each part's CRC32 into the file's checksum without reading the part again.
 */
test('crc32Combine of two runs is the CRC32 of the runs back to back, whatever the split', () => {
  const bytes = testBytes(3 * 1024 * 1024 + 17);
  for (const at of [0, 1, 7, 4096, 65_537, 1024 * 1024, bytes.length - 1, bytes.length]) {
    const first = bytes.subarray(0, at);
    const second = bytes.subarray(at);
    expect(crc32Combine(crc32(first), crc32(second), second.length)).toBe(crc32(bytes) >>> 0);
  }
});

test('a running crc32 checksum given each part with its CRC32 matches one read of the whole', () => {
  const bytes = testBytes(5 * 1024 * 1024 + 3);
  const partSize = 1024 * 1024 + 5;
  const given = runningChecksum('crc32');
  const read = runningChecksum('crc32');
  for (let at = 0; at < bytes.length; at += partSize) {
    const part = bytes.subarray(at, at + partSize);
    given.update(part, crc32(part));
    read.update(part);
  }
  expect(given.digest()).toBe(read.digest());
  expect(given.digest()).toBe((crc32(bytes) >>> 0).toString(16).padStart(8, '0'));
});

test('a wrong CRC32 given for a part changes the checksum: the hint is used, not ignored', () => {
  const part = testBytes(1000);
  const given = runningChecksum('crc32');
  given.update(part, (crc32(part) ^ 1) >>> 0);
  const read = runningChecksum('crc32');
  read.update(part);
  expect(given.digest()).not.toBe(read.digest());
});
