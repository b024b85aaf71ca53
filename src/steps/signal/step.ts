import { formatDuration } from '../../lib/duration.js';
import { errorMessage, StepFailure } from '../../lib/errors.js';
import { stopUnit, unitSignaller } from './systemd-unit.js';
import { cgroupDirectory, cgroupProcesses, gpuProcesses, matchProcesses, readPidfile, refuseSelfAndAncestors, safeTargets } from './targets.js';
import { processSignaller, terminate, type ProcessOutcome } from './terminate.js';
import type { StepContext, StepDetail, StepType } from '../types.js';
import { checkSignalStep } from './check.js';
import { signalSchema, type SignalOptions, type SignalTarget } from './options.js';

/** Time limit of one systemctl / nvidia-smi call. */
const TOOL_TIMEOUT_MS = 10_000;
/** Finding the targets and sending: a default timeout's share besides the waits the options ask for. */
const SEND_MS = 5_000;

function describeTarget(target: SignalTarget): string {
  switch (target.kind) {
    case 'pid':
      return `pid ${target.pid}`;
    case 'pidfile':
      return `the pid in ${target.path}`;
    case 'match':
      return `processes matching /${target.pattern.source}/`;
    case 'unit':
      return `systemd unit ${target.unit}`;
    case 'cgroup':
      return `processes in cgroup ${cgroupDirectory(target.path)}`;
    case 'gpu':
      return 'processes using a GPU (nvidia-smi)';
  }
}

/** Pids for a process target; a skip reason when there is no way to look (no nvidia-smi). */
async function findPids(
  target: Exclude<SignalTarget, { kind: 'unit' }>,
  context: StepContext,
): Promise<number[] | { skipped: string }> {
  switch (target.kind) {
    case 'pid':
      await refuseSelfAndAncestors(target.pid);
      return [target.pid];
    case 'pidfile': {
      const pid = await readPidfile(target.path);
      if (pid !== undefined) await refuseSelfAndAncestors(pid, target.path);
      return pid === undefined ? [] : [pid];
    }
    case 'match':
      return safeTargets(await matchProcesses(target.pattern));
    case 'cgroup':
      return safeTargets(await cgroupProcesses(target.path));
    case 'gpu': {
      const pids = await gpuProcesses({ signal: context.signal, timeoutMs: TOOL_TIMEOUT_MS });
      if (pids === 'tool-missing') return { skipped: 'nvidia-smi not found on PATH: no GPU processes to signal' };
      return safeTargets(pids);
    }
  }
}

function countOutcomes(outcomes: Iterable<ProcessOutcome>): Partial<Record<ProcessOutcome, number>> {
  const counts: Partial<Record<ProcessOutcome, number>> = {};
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

/** Turns the per-target outcomes into the step's result: a detail, or a StepFailure. */
function conclude(
  options: SignalOptions,
  base: StepDetail,
  outcomes: ProcessOutcome[],
  interrupted: boolean,
): StepDetail {
  const counts = countOutcomes(outcomes);
  const detail = { ...base, counts };
  const what = describeTarget(options.target);
  if (interrupted) {
    throw new StepFailure(`step deadline reached while waiting for ${what} to exit`, detail);
  }
  if (counts.permission_denied) {
    throw new StepFailure(`not permitted to signal ${counts.permission_denied} of ${outcomes.length} ${what}`, detail);
  }
  if (counts.still_alive) {
    const waited = formatDuration(options.waitExitMs + (options.killAfterMs ?? 0));
    throw new StepFailure(`${counts.still_alive} of ${outcomes.length} still alive after ${waited}: ${what}`, detail);
  }
  if (outcomes.every((outcome) => outcome === 'not_found')) {
    if (!options.missingOk) throw new StepFailure(`no process found: ${what}`, { ...detail, outcome: 'not_found' });
    return { ...detail, outcome: 'not_found' };
  }
  return detail;
}

async function signalUnit(
  options: SignalOptions,
  target: Extract<SignalTarget, { kind: 'unit' }>,
  context: StepContext,
): Promise<StepDetail> {
  const tool = { signal: context.signal, timeoutMs: TOOL_TIMEOUT_MS };
  const base = { target: describeTarget(target), unit: target.unit, action: target.action };
  if (target.action === 'stop') {
    const outcome = await stopUnit(target.unit, tool);
    return conclude(options, { ...base, outcome }, [outcome], false);
  }
  const result = await terminate([target.unit], unitSignaller(tool), {
    signal: options.signal,
    waitExitMs: options.waitExitMs,
    killAfterMs: options.killAfterMs,
    abort: context.signal,
    deadline: context.deadline,
  });
  const outcome = result.outcomes.get(target.unit)!;
  return conclude(options, { ...base, signal: options.signal, outcome }, [outcome], result.interrupted);
}

async function signalProcesses(
  options: SignalOptions,
  target: Exclude<SignalTarget, { kind: 'unit' }>,
  context: StepContext,
): Promise<StepDetail> {
  const base = { target: describeTarget(target), signal: options.signal };
  const found = await findPids(target, context);
  if (!Array.isArray(found)) {
    if (!options.missingOk) throw new StepFailure(found.skipped, { ...base, outcome: 'skipped' });
    return { ...base, outcome: 'skipped', reason: found.skipped };
  }
  if (found.length === 0) return conclude(options, { ...base, processes: [] }, [], false);
  context.progress({ pids: found.length });
  const result = await terminate(found, processSignaller, {
    signal: options.signal,
    waitExitMs: options.waitExitMs,
    killAfterMs: options.killAfterMs,
    abort: context.signal,
    deadline: context.deadline,
    onWait: (alive) => context.progress({ alive }),
  });
  const processes = found.map((pid) => ({ pid, outcome: result.outcomes.get(pid)! }));
  return conclude(
    options,
    { ...base, processes },
    processes.map((entry) => entry.outcome),
    result.interrupted,
  );
}

export const signalStep = {
  type: 'signal',
  schema: signalSchema,
  destructive: true,
  defaultTimeoutMs: ({ target, waitExitMs, killAfterMs }) =>
    (target.kind === 'unit' || target.kind === 'gpu' ? TOOL_TIMEOUT_MS : 0) + SEND_MS + waitExitMs + (killAfterMs ?? 0),
  async run(options, context) {
    try {
      const { target } = options;
      return target.kind === 'unit'
        ? await signalUnit(options, target, context)
        : await signalProcesses(options, target, context);
    } catch (error) {
      // Cancellation is the executor's to report (timed_out); the rest are described failures.
      if (error instanceof StepFailure || context.signal.aborted) throw error;
      throw new StepFailure(errorMessage(error));
    }
  },
  describe(options) {
    const target = options.target;
    if (target.kind === 'unit' && target.action === 'stop') return `systemctl stop ${target.unit}`;
    const escalate = options.killAfterMs === null ? '' : `, SIGKILL after ${formatDuration(options.killAfterMs)}`;
    const wait = options.killAfterMs === null && options.waitExitMs > 0 ? `, wait ${formatDuration(options.waitExitMs)} for exit` : '';
    return `send ${options.signal} to ${describeTarget(target)}${escalate}${wait}`;
  },
  check: checkSignalStep,
} satisfies StepType<SignalOptions>;
