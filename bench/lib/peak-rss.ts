import { readFileSync } from 'node:fs';

/**
 * This process's peak RSS so far in MiB (VmHWM). Not getrusage's maxRSS: a spawned child's
 * starts from its parent's RSS at the fork.
 */
export function ownPeakRssMiB(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
}
