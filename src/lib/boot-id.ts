import { readFileSync } from 'node:fs';

const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';
let cached: string | undefined;

/**
 * The kernel's id of the current boot, read once per process: it is what keeps a notice id
 * stable across agent restarts within one boot, and tells apart two boots of one instance
 * (a stopped Spot VM started again). '' where the kernel offers none (not Linux).
 */
export function bootId(): string {
  if (cached === undefined) {
    try {
      cached = readFileSync(BOOT_ID_PATH, 'utf8').trim();
    } catch {
      cached = '';
    }
  }
  return cached;
}
