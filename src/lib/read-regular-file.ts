import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** An error shaped like the fs ones (`code`, a message that names the problem, not the path). */
function refusal(code: 'EFTYPE' | 'EFBIG', message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

/**
 * Reads a small file that anyone may have replaced: opened with O_NONBLOCK so a FIFO cannot
 * park a thread-pool thread forever (four such reads stall every later file operation),
 * refused unless fstat says it is a regular file, and read up to `maxBytes` only. Files of
 * pseudo file systems (cgroupfs, /proc) report size 0, so the bound is on what is read.
 * A missing file rejects with the usual ENOENT error; the others have code EFTYPE or EFBIG.
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw refusal('EFTYPE', 'not a regular file (a FIFO, device or directory is never read)');
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw refusal('EFBIG', `larger than ${maxBytes} bytes`);
    return buffer.toString('utf8', 0, length);
  } finally {
    await handle.close();
  }
}
