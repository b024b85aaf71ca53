import { setFlagsFromString } from 'node:v8';

/**
 * Keeps V8's young generation at the size it has now for the rest of the process. V8 grows it
 * (up to 3 × 16 MiB semi-spaces here) while a process allocates fast, and never gives it back:
 * a background sync of a 10 GiB tree took it to 51 MB of resident memory, a sixth of the
 * agent's peak. Its size can only be capped by a launch flag (`--max-semi-space-size`), which
 * `npm start`, npx and a process manager would each have to pass; the growth factor is read
 * each time V8 grows the space, so set once it holds. Measured (sync-memory, 10 GiB, set before
 * the modules load): peak RSS 320 -> 266 MiB at 2.12 -> 2.00 CPU-s per GB; a files-mode snapshot (1231-1300 against
 * 1309-1350 MB/s) and a restore (337-370 MB/s either way) kept their speed with 15-45 MB less.
 * (The bundle loads node:v8, 2 ms, on this first call: scripts/bundle.ts lazyBuiltins.)
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
