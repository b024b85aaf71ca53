import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepFailure } from '../../src/lib/errors.js';
import { execStep, OUTPUT_CAP_BYTES } from '../../src/steps/exec/step.js';
import { isRunning } from '../../src/steps/signal/proc.js';
import { testNotice, testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { FIXTURE_BIN } from '../helpers/workload.js';
import { until } from '../helpers/until.js';

const PROBE = join(FIXTURE_BIN, 'exec-probe.mjs');
const node = process.execPath;
let dir: string;
const contexts: TestStepContext[] = [];
const leftovers: number[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'preemptd-exec-'));
});
afterEach(() => {
  for (const context of contexts.splice(0)) context.dispose();
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function run(raw: Record<string, unknown>, context: { timeoutMs?: number; planDeadline?: number | null } = {}) {
  const step = testStepContext({ ...context, notice: testNotice({ id: 'gcp-preempt-42', kind: 'preempt', provider: 'gcp' }) });
  contexts.push(step);
  return { step, result: execStep.run(execStep.schema.parse(raw), step.context) };
}

async function failure(promise: Promise<unknown>): Promise<StepFailure> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(StepFailure);
  return error as StepFailure;
}

const outputLines = (step: TestStepContext, stream: string) =>
  step.logs.filter((entry) => entry.msg === 'exec output' && entry.stream === stream).map((entry) => entry.line as string);

describe('exec step', () => {
  test('arguments reach the program exactly as written: no shell is involved', async () => {
    const marker = join(dir, 'pwned');
    const tricky = ['two words', "it's", '"quoted"', `$(touch ${marker})`, '`touch x`', '*', '; echo hi', '$HOME'];
    const { step, result } = run({ command: [node, PROBE, 'argv', ...tricky] });
    expect(await result).toMatchObject({ program: node, exitCode: 0 });
    expect(outputLines(step, 'stdout')).toEqual([JSON.stringify(tricky)]);
    expect(existsSync(marker)).toBe(false);
  });

  test('the notice arrives in the environment and as JSON on stdin, in the given cwd', async () => {
    const report = join(dir, 'report.json');
    const planDeadline = Date.now() + 60_000;
    const { step, result } = run(
      { command: [node, PROBE, 'report', report], cwd: dir, env: { EXTRA_FLAG: 'on', EXTRA_COUNT: 3 } },
      { planDeadline },
    );
    await result;
    const seen = JSON.parse(readFileSync(report, 'utf8'));
    const notice = step.context.notice;
    expect(seen.cwd).toBe(dir);
    expect(seen.env).toEqual({
      PREEMPTD_NOTICE_ID: 'gcp-preempt-42',
      PREEMPTD_KIND: 'preempt',
      PREEMPTD_PROVIDER: 'gcp',
      PREEMPTD_DEADLINE: notice.deadline!.toISOString(),
      PREEMPTD_SECONDS_LEFT: expect.stringMatching(/^\d+$/),
      PREEMPTD_DETECTED_AT: notice.detectedAt.toISOString(),
      PREEMPTD_INSTANCE_ID: 'i-0abc123',
      PREEMPTD_PLAN_DEADLINE: new Date(planDeadline).toISOString(),
      EXTRA_FLAG: 'on',
      EXTRA_COUNT: '3',
    });
    const event = JSON.parse(seen.stdin);
    expect(event).toMatchObject({ version: 1, type: 'notice', notice: { id: 'gcp-preempt-42', kind: 'preempt' } });
  });

  test('unknown facts are empty strings in the environment', async () => {
    const report = join(dir, 'report.json');
    const step = testStepContext({ notice: testNotice({ deadline: null, instance: {} }) });
    contexts.push(step);
    await execStep.run(execStep.schema.parse({ command: [node, PROBE, 'report', report] }), step.context);
    const { env } = JSON.parse(readFileSync(report, 'utf8'));
    expect(env).toMatchObject({ PREEMPTD_DEADLINE: '', PREEMPTD_SECONDS_LEFT: '', PREEMPTD_INSTANCE_ID: '', PREEMPTD_PLAN_DEADLINE: '' });
  });

  test('a non-zero exit fails the step with its code, and both streams reach the log', async () => {
    const { step, result } = run({ command: [node, PROBE, 'exit', '3'] });
    const failed = await failure(result);
    expect(failed.message).toBe(`${node} exited with code 3`);
    expect(failed.detail).toMatchObject({ exitCode: 3 });
    expect(outputLines(step, 'stdout')).toEqual(['about to fail']);
    expect(outputLines(step, 'stderr')).toEqual(['something went wrong']);
  });

  test('a program killed by a signal is reported with that signal', async () => {
    const failed = await failure(run({ command: [node, '-e', "process.kill(process.pid, 'SIGKILL')"] }).result);
    expect(failed.message).toBe(`${node} was killed by SIGKILL`);
    expect(failed.detail).toMatchObject({ signal: 'SIGKILL', exitCode: null });
  });

  test('a program that does not exist is a clear failure', async () => {
    const failed = await failure(run({ command: [join(dir, 'no-such-program'), '--flag'] }).result);
    expect(failed.message).toBe(`cannot run ${join(dir, 'no-such-program')}: not found (ENOENT): check the program path and cwd`);
  });

  test('the step deadline stops the whole process group, grandchildren included', async () => {
    const pids = join(dir, 'pids');
    const { result } = run({ command: [node, PROBE, 'tree', pids] }, { timeoutMs: 700 });
    const failed = await failure(result);
    expect(failed.message).toBe(`${node} stopped at the step deadline`);
    const [child, grandchild] = readFileSync(pids, 'utf8').split(' ').map(Number) as [number, number];
    leftovers.push(child, grandchild);
    // The child ignores SIGTERM, so it went with SIGKILL after the grace period.
    expect(failed.detail).toMatchObject({ signal: 'SIGKILL' });
    await until(async () => !(await isRunning(grandchild)), 5000);
    expect(await isRunning(child)).toBe(false);
    expect(await isRunning(grandchild)).toBe(false);
  });

  test('output past 64 KiB per stream is counted, not logged, with one truncation note', async () => {
    const { step, result } = run({ command: [node, PROBE, 'flood', String(200 * 1024)] });
    const detail = await result;
    const logged = outputLines(step, 'stdout');
    // Every logged line but the last (cut at the cap) took its newline along.
    const loggedBytes = logged.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0) - 1;
    expect(loggedBytes).toBeLessThanOrEqual(OUTPUT_CAP_BYTES);
    expect(loggedBytes).toBeGreaterThan(OUTPUT_CAP_BYTES - 200);
    expect(logged[0]).toMatch(/^line 000000 x+$/);
    const notes = step.logs.filter((entry) => entry.msg === 'exec stdout truncated after 64 KiB');
    expect(notes).toHaveLength(1);
    expect(detail).toMatchObject({ outputTruncated: true });
    const { stdoutBytes } = detail as { stdoutBytes: number };
    expect(stdoutBytes).toBeGreaterThanOrEqual(200 * 1024);
    expect(notes[0]!.droppedBytes).toBe(stdoutBytes - loggedBytes);
  });
});

describe('exec step options', () => {
  const problems = (raw: Record<string, unknown>) => {
    const parsed = execStep.schema.safeParse(raw);
    if (parsed.success) throw new Error('expected a rejection');
    return parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('\n');
  };

  test('command must be an argv list, env names must be variable names', () => {
    expect(problems({ command: 'pg_dump -f /tmp/x' })).toBe('command: expected a list: the program, then its arguments (no shell)');
    expect(problems({ command: [] })).toBe('command: expected at least the program to run');
    expect(problems({ command: [' '] })).toBe('command.0: expected a program name or path');
    expect(problems({ command: ['x'], env: { 'BAD-NAME': '1' } })).toBe(
      'env.BAD-NAME: got "BAD-NAME": expected a variable name such as CHECKPOINT_DIR',
    );
  });

  test('describe names the program and counts its arguments', () => {
    expect(execStep.describe(execStep.schema.parse({ command: ['/usr/local/bin/checkpoint', '--fast', '--to=/data'] }))).toBe(
      'run /usr/local/bin/checkpoint with 2 arguments',
    );
  });
});
