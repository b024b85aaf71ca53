import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { crashTrial } from '../helpers/crash-run.js';
import { testRandom } from '../helpers/seed.js';

/**
 * kill -9 during a plan, against the built CLI (npm test builds dist first). The full
 * 20-trial series is bench/crash-series; these few cover an early, a middle and a late kill.
 */
const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

describe('crash safety of the real agent', () => {
  let workDir: string;
  beforeEach(() => {
    workDir = mkdtempSync(join(tmpdir(), 'preemptd-crash-'));
  });
  afterEach(() => rmSync(workDir, { recursive: true, force: true }));

  test.each([50, 450, 900])(
    'killed with SIGKILL %i ms into a plan, the restarted agent repeats no journaled step and runs every other one',
    async (killAfterMs) => {
      const trial = await crashTrial({ cli: CLI, workDir, killAfterMs: killAfterMs + testRandom().int(0, 100) });
      expect(trial.problems).toEqual([]);
      expect(trial.journalAtKill).not.toBe('corrupt');
      expect(trial.finalStatus).toBe('done');
      expect(Object.keys(trial.finalSteps).sort()).toEqual(['checkpoint', 'notify', 'stop-trainer', 'summary', 'upload']);
    },
    60_000,
  );

  test('killed mid-plan and restarted after the notice deadline, the agent does not resume the plan', async () => {
    const trial = await crashTrial({ cli: CLI, workDir, killAfterMs: 450, leadMs: 3000, restartAfterMs: 3000 });
    expect(trial.runsAgain).toBe(false);
    expect(trial.problems).toEqual([]);
    expect(trial.finalStatus).toBe('done');
  }, 60_000);

  test('a journal torn mid-write is moved aside, a leftover temp file is removed, and the plan still runs', async () => {
    const journal = JSON.stringify({ version: 1, notices: [{ notice: { id: 'aws-terminate-0000000000000000' }, status: 'in_progress', begunAt: 1, steps: {} }] });
    const torn = fc.sample(fc.integer({ min: 1, max: journal.length - 1 }), 1)[0]!;
    const trial = await crashTrial({ cli: CLI, workDir, killAfterMs: 200, journalText: journal.slice(0, torn) });
    expect(trial.problems).toEqual([]);
    expect(trial.finalStatus).toBe('done');
  }, 60_000);
});
