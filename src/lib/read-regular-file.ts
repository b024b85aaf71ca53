import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/*
 * Reading a small file that anyone may have replaced (a pidfile, cgroup.procs, a ${file:}
 * secret): opened with O_NONBLOCK so a FIFO cannot park a thread forever (four such reads in
 * the thread pool stall every later file operation), refused unless fstat says it is a
 * regular file, and read up to `maxBytes` only. Files of pseudo file systems (cgroupfs,
 * /proc) report size 0, so the bound is on what is read, not on the size. A missing file
 * fails with the usual ENOENT error; the refusals have code EFTYPE (with the file's type in
 * the message) or EFBIG.
 */

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** What a file that is not a regular one is, for messages. */
function fileType(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** A refusal shaped like the fs errors; EFTYPE ones say what the file was in `fileType`. */
export type Refusal = NodeJS.ErrnoException & { fileType?: string };

function refusal(code: 'EFTYPE' | 'EFBIG', message: string, fileType?: string): Refusal {
  return Object.assign(new Error(message), { code, fileType });
}

function checkRegular(stats: Stats): void {
  if (!stats.isFile()) throw refusal('EFTYPE', `not a regular file (${fileType(stats)}, never read)`, fileType(stats));
}

/** The bytes read, as text; EFBIG when there were more than `maxBytes`. */
function bounded(buffer: Buffer, length: number, maxBytes: number): string {
  if (length > maxBytes) throw refusal('EFBIG', `larger than ${maxBytes} bytes`);
  return buffer.toString('utf8', 0, length);
}

export async function readRegularFile(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, OPEN_FLAGS);
  try {
    checkRegular(await handle.stat());
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return bounded(buffer, length, maxBytes);
  } finally {
    await handle.close();
  }
}

/** The same for code that must stay synchronous (config references are resolved in one pass). */
export function readRegularFileSync(path: string, maxBytes: number): string {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    checkRegular(fstatSync(fd));
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return bounded(buffer, length, maxBytes);
  } finally {
    closeSync(fd);
  }
}
