import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `path` with `text` (a string, or its bytes) so a crash leaves the old file or the
 * new one, never a mix: writes a temporary file named `<tempPrefix><random>` beside it, syncs
 * it, renames it into place and syncs the directory. Owner-only (0600).
 */
export async function writeFileAtomically(path: string, text: string | Uint8Array, tempPrefix = `${basename(path)}.tmp-`): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `${tempPrefix}${randomBytes(6).toString('hex')}`);
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } catch (error) {
    await file.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await file.close();
  await rename(temp, path);
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
