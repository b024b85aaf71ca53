import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandNotFound, StepFailure } from '../../src/lib/errors.js';
import { runCommand } from '../../src/lib/run-command.js';
import { signalStep } from '../../src/steps/signal/step.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';
import { FIXTURE_BIN, Workloads } from '../helpers/workload.js';

// Targets that go through a tool (systemctl, nvidia-smi) run against the fakes in
// test/fixtures/bin, which log their argv; cgroup targets need a writable /sys/fs/cgroup.

let dir: string;
const workloads = new Workloads();
const contexts: TestStepContext[] = [];
const savedPath = process.env.PATH;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'preemptd-signal-targets-'));
  process.env.PATH = `${FIXTURE_BIN}:${savedPath}`;
  process.env.FAKE_SYSTEMCTL_LOG = join(dir, 'systemctl.log');
  process.env.FAKE_SYSTEMCTL_STATE = join(dir, 'unit.state');
  process.env.FAKE_NVIDIA_LOG = join(dir, 'nvidia.log');
  writeFileSync(process.env.FAKE_SYSTEMCTL_STATE, 'active\n');
});
afterEach(() => {
  for (const context of contexts.splice(0)) context.dispose();
  workloads.killAll();
  process.env.PATH = savedPath;
  for (const name of ['FAKE_SYSTEMCTL_LOG', 'FAKE_SYSTEMCTL_STATE', 'FAKE_SYSTEMCTL_STOPS_ON', 'FAKE_NVIDIA_LOG', 'FAKE_NVIDIA_PIDS']) {
    delete process.env[name];
  }
  rmSync(dir, { recursive: true, force: true });
});

function run(raw: Record<string, unknown>) {
  const step = testStepContext();
  contexts.push(step);
  return signalStep.run(signalStep.schema.parse(raw), step.context);
}

async function failure(raw: Record<string, unknown>): Promise<StepFailure> {
  const error = await run(raw).then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(StepFailure);
  return error as StepFailure;
}

const toolCalls = (file: string | undefined) => readFileSync(file!, 'utf8').split('\n').filter(Boolean);

describe('systemd unit target', () => {
  test('sends the signal with systemctl kill and does not wait unless asked', async () => {
    const detail = await run({ unit: 'trainer.service', signal: 'USR1' });
    expect(toolCalls(process.env.FAKE_SYSTEMCTL_LOG)).toEqual(['kill --signal=SIGUSR1 -- trainer.service']);
    expect(detail).toMatchObject({ unit: 'trainer.service', action: 'kill', signal: 'SIGUSR1', outcome: 'signalled' });
  });

  test('waitExit polls is-active until the unit is inactive', async () => {
    process.env.FAKE_SYSTEMCTL_STOPS_ON = 'SIGTERM';
    const detail = await run({ unit: 'trainer.service', waitExit: '5s' });
    expect(detail).toMatchObject({ outcome: 'exited' });
    expect(toolCalls(process.env.FAKE_SYSTEMCTL_LOG)).toEqual([
      'kill --signal=SIGTERM -- trainer.service',
      'is-active --quiet -- trainer.service',
    ]);
  });

  test('killAfter escalates with systemctl kill --signal=SIGKILL', async () => {
    const detail = await run({ unit: 'trainer.service', killAfter: '200ms' });
    expect(detail).toMatchObject({ outcome: 'killed' });
    const calls = toolCalls(process.env.FAKE_SYSTEMCTL_LOG);
    expect(calls[0]).toBe('kill --signal=SIGTERM -- trainer.service');
    expect(calls).toContain('kill --signal=SIGKILL -- trainer.service');
    expect(calls.at(-1)).toBe('is-active --quiet -- trainer.service');
  });

  test('action stop runs systemctl stop', async () => {
    const detail = await run({ unit: 'trainer.service', action: 'stop' });
    expect(toolCalls(process.env.FAKE_SYSTEMCTL_LOG)).toEqual(['stop -- trainer.service']);
    expect(detail).toMatchObject({ action: 'stop', outcome: 'exited' });
  });

  test('a unit that is not loaded is not_found: ok by default, a failure with missingOk false', async () => {
    expect(await run({ unit: 'missing.service' })).toMatchObject({ outcome: 'not_found' });
    expect((await failure({ unit: 'missing.service', missingOk: false })).message).toBe(
      'no process found: systemd unit missing.service',
    );
  });

  test('a machine without systemctl gets a clear failure', async () => {
    process.env.PATH = dir;
    expect((await failure({ unit: 'trainer.service' })).message).toBe('systemctl not found on PATH');
  });
});

describe('gpu target', () => {
  test('signals every pid nvidia-smi lists, never preemptd itself', async () => {
    const gpuJobs = await Promise.all([1, 2].map((n) => workloads.start(join(dir, `gpu${n}.log`))));
    process.env.FAKE_NVIDIA_PIDS = [...gpuJobs.map((w) => w.pid), process.pid].join(' ');
    const detail = (await run({ gpu: true, waitExit: '5s' })) as { processes: Array<{ pid: number; outcome: string }> };
    expect(toolCalls(process.env.FAKE_NVIDIA_LOG)).toEqual(['--query-compute-apps=pid --format=csv,noheader']);
    expect(detail.processes).toEqual(gpuJobs.map((w) => ({ pid: w.pid, outcome: 'exited' })));
    for (const job of gpuJobs) expect(job.received()).toEqual(['SIGTERM']);
  });

  test('without nvidia-smi the step is ok and says it skipped, or fails with missingOk false', async () => {
    process.env.PATH = dir;
    expect(await run({ gpu: true })).toMatchObject({
      outcome: 'skipped',
      reason: 'nvidia-smi not found on PATH: no GPU processes to signal',
    });
    expect((await failure({ gpu: true, missingOk: false })).message).toBe(
      'nvidia-smi not found on PATH: no GPU processes to signal',
    );
  });
});

describe('helper programs', () => {
  const limits = () => ({ signal: new AbortController().signal, timeoutMs: 200 });

  test('one that is not installed is CommandNotFound, coded ERR_COMMAND', async () => {
    process.env.PATH = dir;
    const run = runCommand('nvidia-smi', [], limits());
    await expect(run).rejects.toBeInstanceOf(CommandNotFound);
    await expect(run).rejects.toMatchObject({ code: 'ERR_COMMAND', message: 'nvidia-smi not found on PATH' });
  });

  test('one that outlives its time limit is ERR_COMMAND', async () => {
    await expect(runCommand('sleep', ['30'], limits())).rejects.toMatchObject({ code: 'ERR_COMMAND', message: 'sleep 30: timed out after 200 ms' });
  });
});

/** A cgroup hierarchy we may create groups in, or why not (containers often mount it read-only). */
function writableCgroupRoot(): { root: string } | { reason: string } {
  for (const root of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup', '/sys/fs/cgroup/pids']) {
    if (!existsSync(join(root, 'cgroup.procs'))) continue;
    const probe = join(root, `preemptd-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      rmdirSync(probe);
      return { root };
    } catch {
      // Try the next hierarchy.
    }
  }
  return { reason: 'no writable cgroup hierarchy under /sys/fs/cgroup on this machine' };
}

const cgroupRoot = writableCgroupRoot();
const cgroupTest = 'root' in cgroupRoot ? test : test.skip;
const cgroupSkipNote = 'root' in cgroupRoot ? '' : ` (skipped: ${cgroupRoot.reason})`;

describe('cgroup target', () => {
  test('a relative path is read under /sys/fs/cgroup', () => {
    expect(signalStep.describe(signalStep.schema.parse({ cgroup: 'system.slice/trainer.service' }))).toBe(
      'send SIGTERM to processes in cgroup /sys/fs/cgroup/system.slice/trainer.service',
    );
  });

  test('a cgroup that does not exist means no process', async () => {
    expect(await run({ cgroup: join(dir, 'no-such-cgroup') })).toMatchObject({ outcome: 'not_found', processes: [] });
  });

  cgroupTest(`signals every process in the cgroup and its child cgroups${cgroupSkipNote}`, async () => {
    const root = (cgroupRoot as { root: string }).root;
    const group = join(root, `preemptd-test-${process.pid}-${Date.now()}`);
    const child = join(group, 'worker');
    mkdirSync(child, { recursive: true });
    try {
      const [leader, worker] = await Promise.all([1, 2].map((n) => workloads.start(join(dir, `cg${n}.log`))));
      // cgroup v2 allows processes only in leaves once a group has children: use two leaves.
      const leaderGroup = join(group, 'leader');
      mkdirSync(leaderGroup);
      writeFileSync(join(leaderGroup, 'cgroup.procs'), String(leader!.pid));
      writeFileSync(join(child, 'cgroup.procs'), String(worker!.pid));
      const detail = (await run({ cgroup: group, waitExit: '5s' })) as { processes: Array<{ pid: number; outcome: string }> };
      expect(detail.processes.map((entry) => entry.pid).sort()).toEqual([leader!.pid, worker!.pid].sort());
      expect(detail.processes.every((entry) => entry.outcome === 'exited')).toBe(true);
      expect(leader!.received()).toEqual(['SIGTERM']);
      expect(worker!.received()).toEqual(['SIGTERM']);
    } finally {
      workloads.killAll();
      await removeCgroup(group);
    }
  });
});

/** Removes a test cgroup once its processes are gone (rmdir fails while any remain). */
async function removeCgroup(group: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    try {
      for (const leaf of ['leader', 'worker']) if (existsSync(join(group, leaf))) rmdirSync(join(group, leaf));
      rmdirSync(group);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
