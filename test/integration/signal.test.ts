import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepFailure } from '../../src/lib/errors.js';
import type { SignalOptions } from '../../src/steps/signal/options.js';
import { signalStep } from '../../src/steps/signal/step.js';
import { selfAndAncestors } from '../../src/steps/signal/proc.js';
import { safeTargets } from '../../src/steps/signal/targets.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { Workloads } from '../helpers/workload.js';
import { until } from '../helpers/until.js';

let dir: string;
const workloads = new Workloads();
let step: TestStepContext | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'preemptd-signal-'));
});
afterEach(() => {
  step?.dispose();
  step = undefined;
  workloads.killAll();
  rmSync(dir, { recursive: true, force: true });
});

function options(raw: Record<string, unknown>): SignalOptions {
  return signalStep.schema.parse(raw);
}

/** The schema's messages, one `path: message` per line, as the config loader shows them. */
function problems(raw: Record<string, unknown>): string {
  const result = signalStep.schema.safeParse(raw);
  if (result.success) throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
  return result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('\n');
}

async function run(raw: Record<string, unknown>, timeoutMs = 10_000) {
  step?.dispose();
  step = testStepContext({ timeoutMs });
  return signalStep.run(options(raw), step.context);
}

async function runFailing(raw: Record<string, unknown>, timeoutMs = 10_000): Promise<StepFailure> {
  const error = await run(raw, timeoutMs).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StepFailure);
  return error as StepFailure;
}

describe('signal step options', () => {
  test('durations compile to milliseconds and signal names are normalised', () => {
    expect(options({ pid: 1234, signal: 'usr1', killAfter: '20s', waitExit: '500ms' })).toEqual({
      target: { kind: 'pid', pid: 1234 },
      signal: 'SIGUSR1',
      waitExitMs: 500,
      killAfterMs: 20_000,
      missingOk: true,
    });
  });

  test('defaults are SIGTERM, no waiting, and a 5s confirmation wait once killAfter is set', () => {
    expect(options({ pidfile: '/run/x.pid' })).toMatchObject({ signal: 'SIGTERM', waitExitMs: 0, killAfterMs: null });
    expect(options({ pidfile: '/run/x.pid', killAfter: '1s' })).toMatchObject({ waitExitMs: 5000, killAfterMs: 1000 });
  });

  test('exactly one target is required', () => {
    expect(problems({ signal: 'SIGTERM' })).toMatch(/expected exactly one target: pid, pidfile, match/);
    expect(problems({ pid: 5, match: 'x' })).toMatch(/got pid and match: expected exactly one target/);
  });

  test('pid 0, pid 1 and non-numbers are refused', () => {
    expect(problems({ pid: 1 })).toMatch(/got 1: expected a process id greater than 1/);
    expect(problems({ pid: 0 })).toMatch(/expected a process id greater than 1/);
    expect(problems({ pid: 'abc' })).toMatch(/got "abc": expected a process id/);
    expect(options({ pid: '4321' }).target).toEqual({ kind: 'pid', pid: 4321 });
  });

  test('bad signal names, regexes, durations and unknown keys are named', () => {
    expect(problems({ pid: 5, signal: 'SIGNOPE' })).toMatch(/got "SIGNOPE": expected a signal name/);
    expect(problems({ match: '(' })).toMatch(/got "\(": not a valid regular expression/);
    expect(problems({ pid: 5, killAfter: 'soon' })).toMatch(/got "soon": expected a duration/);
    expect(problems({ pid: 5, sginal: 'TERM' })).toMatch(/sginal/);
  });

  test('action applies to units only, and stop does not take waitExit or killAfter', () => {
    expect(problems({ pid: 5, action: 'stop' })).toMatch(/action applies to a unit target only/);
    expect(problems({ unit: 'x.service', action: 'stop', killAfter: '1s' })).toMatch(/drop waitExit and killAfter/);
  });

  test('describe gives one line for a dry run', () => {
    expect(signalStep.describe(options({ match: 'train\\.py', killAfter: '20s' }))).toBe(
      'send SIGTERM to processes matching /train\\.py/, SIGKILL after 20s',
    );
    expect(signalStep.describe(options({ pidfile: '/run/t.pid', signal: 'USR1', waitExit: '2s' }))).toBe(
      'send SIGUSR1 to the pid in /run/t.pid, wait 2s for exit',
    );
    expect(signalStep.describe(options({ unit: 'trainer.service', action: 'stop' }))).toBe('systemctl stop trainer.service');
  });
});

describe('signal step against real processes', () => {
  test('a pid target receives the signal and is reported exited', async () => {
    const workload = await workloads.start(join(dir, 'a.log'));
    const detail = await run({ pid: workload.pid, waitExit: '5s' });
    expect(workload.received()).toEqual(['SIGTERM']);
    expect(detail).toMatchObject({ processes: [{ pid: workload.pid, outcome: 'exited' }], counts: { exited: 1 } });
  });

  test('without waitExit the signal is only delivered, e.g. SIGUSR1 to checkpoint', async () => {
    const workload = await workloads.start(join(dir, 'a.log'));
    const detail = await run({ pid: workload.pid, signal: 'SIGUSR1' });
    expect(detail).toMatchObject({ signal: 'SIGUSR1', processes: [{ pid: workload.pid, outcome: 'signalled' }] });
    await until(() => workload.received().length > 0, 5000);
    expect(workload.received()).toEqual(['SIGUSR1']);
    expect(workload.child.exitCode).toBeNull();
  });

  test('a pidfile target signals the pid it holds', async () => {
    const workload = await workloads.start(join(dir, 'a.log'));
    const pidfile = join(dir, 'trainer.pid');
    writeFileSync(pidfile, `${workload.pid}\n`);
    const detail = await run({ pidfile, signal: 'SIGINT', waitExit: '5s' });
    expect(workload.received()).toEqual(['SIGINT']);
    expect(detail).toMatchObject({ processes: [{ pid: workload.pid, outcome: 'exited' }] });
  });

  test.each([['0'], ['1'], ['garbage'], ['12 13'], ['']])('a pidfile holding %j is a clear failure', async (content) => {
    const pidfile = join(dir, 'bad.pid');
    writeFileSync(pidfile, content);
    const failure = await runFailing({ pidfile });
    expect(failure.message).toBe(`pidfile ${pidfile} holds ${JSON.stringify(content)}: expected one process id greater than 1`);
  });

  test('a missing pidfile means no process: ok by default, a failure with missingOk false', async () => {
    const pidfile = join(dir, 'absent.pid');
    expect(await run({ pidfile })).toMatchObject({ outcome: 'not_found', processes: [] });
    const failure = await runFailing({ pidfile, missingOk: false });
    expect(failure.message).toBe(`no process found: the pid in ${pidfile}`);
    expect(failure.detail).toMatchObject({ outcome: 'not_found' });
  });

  test('a pid that no longer exists is reported not_found', async () => {
    const workload = await workloads.start(join(dir, 'a.log'));
    workload.child.kill('SIGKILL');
    await new Promise((resolve) => workload.child.once('exit', resolve));
    expect(await run({ pid: workload.pid })).toMatchObject({
      outcome: 'not_found',
      processes: [{ pid: workload.pid, outcome: 'not_found' }],
    });
  });

  test('a match target signals every matching process and none of our own lineage', async () => {
    const tag = `preemptd-match-${process.pid}-${Date.now()}`;
    const started = await Promise.all([1, 2, 3].map((n) => workloads.start(join(dir, `${n}.log`), [tag])));
    const bystander = await workloads.start(join(dir, 'other.log'), ['unrelated']);
    const detail = (await run({ match: tag, waitExit: '5s' })) as { processes: Array<{ pid: number; outcome: string }> };
    expect(detail.processes.map((entry) => entry.pid).sort()).toEqual(started.map((w) => w.pid).sort());
    expect(detail.processes.every((entry) => entry.outcome === 'exited')).toBe(true);
    for (const workload of started) expect(workload.received()).toEqual(['SIGTERM']);
    expect(bystander.received()).toEqual([]);
  });

  test('discovered targets never include pid 0/1, preemptd itself or its ancestors', async () => {
    // Checked on the filter itself: a real broad match here could hit other jest workers.
    const workload = await workloads.start(join(dir, 'w.log'));
    expect(await safeTargets([0, 1, process.pid, process.ppid, workload.pid, workload.pid])).toEqual([workload.pid]);
  });

  test('the protected lineage holds preemptd and its ancestors up to init', async () => {
    const lineage = await selfAndAncestors();
    expect(lineage.has(process.pid)).toBe(true);
    expect(lineage.has(process.ppid)).toBe(true);
    expect(lineage.has(1) || lineage.size >= 2).toBe(true);
  });

  test('killAfter escalates to SIGKILL for a process that ignores SIGTERM', async () => {
    const polite = await workloads.start(join(dir, 'polite.log'), [`escalate-test-${process.pid}`]);
    const stubborn = await workloads.start(join(dir, 'stubborn.log'), ['--ignore', 'SIGTERM', `escalate-test-${process.pid}`]);
    const detail = await run({ match: `escalate-test-${process.pid}`, killAfter: '300ms' });
    expect(detail).toMatchObject({ counts: { exited: 1, killed: 1 } });
    const outcomes = Object.fromEntries(
      (detail as { processes: Array<{ pid: number; outcome: string }> }).processes.map((e) => [e.pid, e.outcome]),
    );
    expect(outcomes).toEqual({ [polite.pid]: 'exited', [stubborn.pid]: 'killed' });
    await new Promise((resolve) => (stubborn.child.signalCode ? resolve(undefined) : stubborn.child.once('exit', resolve)));
    expect(stubborn.child.signalCode).toBe('SIGKILL');
    expect(stubborn.received()).toEqual(['SIGTERM']);
  });

  test('waitExit reports exited and still_alive separately and fails the step', async () => {
    const polite = await workloads.start(join(dir, 'polite.log'), [`wait-test-${process.pid}`]);
    const stubborn = await workloads.start(join(dir, 'stubborn.log'), ['--ignore', 'SIGTERM', `wait-test-${process.pid}`]);
    const failure = await runFailing({ match: `wait-test-${process.pid}`, waitExit: '300ms' });
    expect(failure.message).toBe(`1 of 2 still alive after 300ms: processes matching /wait-test-${process.pid}/`);
    const processes = (failure.detail as { processes: Array<{ pid: number; outcome: string }> }).processes;
    expect(Object.fromEntries(processes.map((e) => [e.pid, e.outcome]))).toEqual({
      [polite.pid]: 'exited',
      [stubborn.pid]: 'still_alive',
    });
    expect(stubborn.child.exitCode).toBeNull();
    // What a timed-out step's summary keeps: how many were signalled and how many remain.
    expect(step!.progress).toEqual([{ pids: 2 }, { alive: 1 }]);
  });

  test('the step deadline cuts a long wait short', async () => {
    const stubborn = await workloads.start(join(dir, 'stubborn.log'), ['--ignore', 'SIGTERM']);
    const started = Date.now();
    const failure = await runFailing({ pid: stubborn.pid, killAfter: '60s' }, 400);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(failure.message).toBe(`step deadline reached while waiting for pid ${stubborn.pid} to exit`);
    expect(failure.detail).toMatchObject({ processes: [{ pid: stubborn.pid, outcome: 'still_alive' }] });
  });

  test('no matching process is ok by default and a failure with missingOk false', async () => {
    const pattern = `nothing-runs-like-this-${Date.now()}`;
    expect(await run({ match: pattern })).toMatchObject({ outcome: 'not_found', processes: [] });
    const failure = await runFailing({ match: pattern, missingOk: false });
    expect(failure.message).toBe(`no process found: processes matching /${pattern}/`);
  });
});
