import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crashTrial, type CrashTrial } from '../test/helpers/crash-run.js';

/**
 * The kill -9 series: the real agent is killed with SIGKILL at points spread over a whole
 * plan (0 to 1.2 s after it logs the notice, each trial at its own point plus jitter), then
 * restarted. Every trial checks that the journal on disk is never corrupt, that no step
 * journaled as finished runs again, and that every other step runs once more. The last
 * trials restart after the notice deadline (the plan must not resume) and start from a
 * journal torn mid-write.
 *
 * npm run bench -- crash-series [--trials 20]
 */
/** The plan takes about a second; a few trials land just after it. */
const SPREAD_MS = 1200;

export default async function main(args: string[]): Promise<void> {
  const trials = Number(args[args.indexOf('--trials') + 1] || 20);
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
  const results: CrashTrial[] = [];
  for (let index = 0; index < trials; index += 1) {
    const workDir = mkdtempSync(join(tmpdir(), 'preemptd-crash-series-'));
    const kind = index === trials - 2 ? 'past deadline' : index === trials - 1 ? 'torn journal' : 'mid-plan';
    const killAfterMs = kind === 'mid-plan' ? Math.round((index / (trials - 2)) * SPREAD_MS + Math.random() * (SPREAD_MS / trials)) : 450;
    try {
      const trial = await crashTrial({
        cli,
        workDir,
        killAfterMs,
        ...(kind === 'past deadline' ? { leadMs: 3000, restartAfterMs: 3000 } : {}),
        ...(kind === 'torn journal' ? { journalText: '{"version":1,"notices":[{"notice":{"id":"aws-terminate-00' } : {}),
      });
      results.push(trial);
      const repeated = Object.keys(trial.runsTotal).filter((step) => trial.runsTotal[step]! > 1);
      console.log(
        `trial ${String(index + 1).padStart(2)} ${kind.padEnd(13)} kill at +${String(killAfterMs).padStart(4)} ms: journal ${trial.journalAtKill}, ` +
          `journaled [${trial.journaledAtKill.join(' ')}], ran again (cut by the kill) [${repeated.join(' ')}], ` +
          `${trial.runsAgain ? 'resumed' : 'not resumed'}, final ${trial.finalStatus ?? 'none'}: ${trial.problems.length === 0 ? 'ok' : trial.problems.join('; ')}`,
      );
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }
  const clean = results.filter((trial) => trial.problems.length === 0).length;
  const journaled = results.reduce((sum, trial) => sum + trial.journaledAtKill.length, 0);
  const repeats = results.reduce((sum, trial) => sum + Object.values(trial.runsTotal).filter((runs) => runs > 1).length, 0);
  console.log(
    `crash series: ${clean} of ${results.length} trials held (no corrupt journal, no journaled step repeated, every other step run); ` +
      `${journaled} steps were journaled at a kill and none ran again; ${repeats} step runs cut by a kill ran once more after the restart`,
  );
}
