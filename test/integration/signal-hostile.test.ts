import { closeSync, constants, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StepFailure } from '../../src/lib/errors.js';
import { runCommand } from '../../src/lib/run-command.js';
import { signalStep } from '../../src/steps/signal/step.js';
import { cgroupProcesses, readPidfile } from '../../src/steps/signal/targets.js';
import { TestResources } from '../helpers/resources.js';
import { testStepContext } from '../helpers/step-context.js';

// Pidfiles and cgroup files that anyone may write or replace: a FIFO, a huge file, or the
// agent's own pid must never stall or harm the agent.

const resources = new TestResources('preemptd-signal-hostile-');
const { workloads } = resources;
let dir: string;

beforeEach(() => {
  dir = resources.tempDir();
});

/** A step context for this test, disposed after it. */
function stepContext() {
  const step = testStepContext({ timeoutMs: 10_000 });
  resources.defer(() => step.dispose());
  return step.context;
}

async function makeFifo(path: string): Promise<string> {
  const result = await runCommand('mkfifo', [path], { signal: new AbortController().signal, timeoutMs: 5000 });
  expect(result.exitCode).toBe(0);
  // On the unfixed code a read is still parked on the FIFO: a writer that opens and closes releases it.
  resources.defer(() => {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader left
    }
  });
  return path;
}

async function runFailing(raw: Record<string, unknown>): Promise<StepFailure> {
  const error = await signalStep.run(signalStep.schema.parse(raw), stepContext()).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StepFailure);
  return error as StepFailure;
}

describe('pidfiles that are not plain small files', () => {
  test('a FIFO pidfile is refused at once instead of blocking a thread-pool thread', async () => {
    const pidfile = await makeFifo(join(dir, 'trainer.pid'));
    const failure = await runFailing({ pidfile });
    expect(failure.message).toMatch(`cannot read pidfile ${pidfile}: not a regular file`);
  });

  test('five FIFO pidfiles in a row leave the thread pool free for other file operations', async () => {
    const pidfiles = await Promise.all([1, 2, 3, 4, 5].map((n) => makeFifo(join(dir, `${n}.pid`))));
    const reads = await Promise.allSettled(pidfiles.map((path) => readPidfile(path)));
    expect(reads.every((read) => read.status === 'rejected')).toBe(true);
    writeFileSync(join(dir, 'after.pid'), '4242\n');
    expect(await readPidfile(join(dir, 'after.pid'))).toBe(4242);
  });

  test('a pidfile larger than a pidfile can be is refused without reading it whole', async () => {
    const pidfile = join(dir, 'huge.pid');
    writeFileSync(pidfile, `4242${' '.repeat(64 * 1024)}\n`);
    await expect(readPidfile(pidfile)).rejects.toThrow(`cannot read pidfile ${pidfile}: larger than 4096 bytes`);
  });

  test('a cgroup.procs that is a FIFO is refused instead of blocking', async () => {
    const cgroup = join(dir, 'cgroup');
    mkdirSync(cgroup);
    await makeFifo(join(cgroup, 'cgroup.procs'));
    await expect(cgroupProcesses(cgroup)).rejects.toThrow(`cannot read cgroup ${cgroup}: not a regular file`);
  });
});

describe('a pid or pidfile naming preemptd or an ancestor', () => {
  // SIGWINCH is ignored by default: on the unfixed code the test process survives to fail the assertion.
  test('a pidfile holding our own pid is refused, nothing is sent', async () => {
    const pidfile = join(dir, 'self.pid');
    writeFileSync(pidfile, `${process.pid}\n`);
    const failure = await runFailing({ pidfile, signal: 'SIGWINCH' });
    expect(failure.message).toBe(`pidfile ${pidfile} names pid ${process.pid}, which is preemptd itself: refusing to signal it`);
  });

  test('a pidfile holding our parent pid is refused', async () => {
    const pidfile = join(dir, 'parent.pid');
    writeFileSync(pidfile, `${process.ppid}\n`);
    const failure = await runFailing({ pidfile, signal: 'SIGWINCH' });
    expect(failure.message).toMatch(`names pid ${process.ppid}, which is an ancestor of preemptd`);
  });

  test('a pid target that is preemptd itself is refused', async () => {
    const failure = await runFailing({ pid: process.pid, signal: 'SIGWINCH' });
    expect(failure.message).toBe(`pid ${process.pid} is preemptd itself: refusing to signal it`);
  });

  test('check reports the refusal without signalling', async () => {
    const pidfile = join(dir, 'self.pid');
    writeFileSync(pidfile, `${process.pid}\n`);
    const results = await signalStep.check(signalStep.schema.parse({ pidfile }), { signal: new AbortController().signal } as never);
    expect(results).toEqual([{ what: 'pidfile target', ok: false, reason: expect.stringContaining('which is preemptd itself') }]);
  });
});

describe('a match pattern against command lines any local user can set', () => {
  // A backtracking engine takes 2^n steps for `(a+)+$` on n a's and a `!`: with 5000 a's in
  // a command line the unfixed agent never finishes listing processes, and no timer fires.
  test('a catastrophic pattern runs in linear time and ordinary matching still works', async () => {
    const tag = `preemptd-redos-${process.pid}-${Date.now()}`;
    const hostile = await workloads.start(join(dir, 'hostile.log'), [tag, `${'a'.repeat(5000)}!`]);
    const target = await workloads.start(join(dir, 'target.log'), [tag, 'aaaa']);
    let ticks = 0;
    const ticker = setInterval(() => (ticks += 1), 10);
    try {
      const detail = await signalStep.run(signalStep.schema.parse({ match: `${tag} (a+)+$`, waitExit: '5s' }), stepContext());
      expect(detail).toMatchObject({ processes: [{ pid: target.pid, outcome: 'exited' }] });
      expect(hostile.received()).toEqual([]);
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(ticker);
    }
  });

  test('config validation names the accepted syntax', () => {
    const result = signalStep.schema.safeParse({ match: '(?<=python )train' });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.message).toMatch(/not a valid regular expression in RE2 syntax \(as in Go\): no backreferences \(\\1\) and no lookaround/);
  });
});
