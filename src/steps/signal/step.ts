import { z } from 'zod';
import { duration, regex, showValue, signalName } from '../../config/fields.js';
import { formatDuration } from '../../lib/duration.js';
import { errorMessage } from '../../lib/errors.js';
import { stopUnit, unitSignaller } from './systemd-unit.js';
import {
  cgroupDirectory,
  cgroupProcesses,
  gpuProcesses,
  matchProcesses,
  readPidfile,
  safeTargets,
} from './targets.js';
import { processSignaller, terminate, type ProcessOutcome } from './terminate.js';
import { StepFailure, type StepContext, type StepDetail, type StepType } from '../types.js';
import { checkSignalStep } from './check.js';

/** Which processes to signal; exactly one per step. */
export type SignalTarget =
  | { kind: 'pid'; pid: number }
  | { kind: 'pidfile'; path: string }
  | { kind: 'match'; pattern: RegExp }
  | { kind: 'unit'; unit: string; action: 'kill' | 'stop' }
  | { kind: 'cgroup'; path: string }
  | { kind: 'gpu' };

export interface SignalOptions {
  target: SignalTarget;
  signal: NodeJS.Signals;
  /** After the last signal, how long to wait for the targets to be gone; 0: do not wait. */
  waitExitMs: number;
  killAfterMs: number | null;
  /** No matching process is a success (true) or a failure (false). */
  missingOk: boolean;
}

const TARGET_KEYS = ['pid', 'pidfile', 'match', 'unit', 'cgroup', 'gpu'] as const;
/** How long SIGKILLed processes get to vanish when `waitExit` is not given. */
const KILL_CONFIRM_MS = 5000;
/** Time limit of one systemctl / nvidia-smi call. */
const TOOL_TIMEOUT_MS = 10_000;

const pid = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number <= 1) {
    ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: expected a process id greater than 1` });
    return z.NEVER;
  }
  return number;
});

const nonEmpty = (what: string) => z.string().trim().min(1, `expected ${what}`);

export const signalSchema = z
  .strictObject({
    pid: pid.optional(),
    pidfile: nonEmpty('the path of a pidfile').optional(),
    match: regex().optional(),
    unit: nonEmpty('a systemd unit name').optional(),
    action: z.enum(['kill', 'stop'], { message: 'expected kill or stop' }).optional(),
    cgroup: nonEmpty('a cgroup path').optional(),
    gpu: z.literal(true, { message: 'expected true (signal every process using a GPU)' }).optional(),
    signal: signalName().default('SIGTERM'),
    waitExit: duration().optional(),
    killAfter: duration().optional(),
    missingOk: z.boolean().default(true),
  })
  .superRefine((raw, ctx) => {
    const given = TARGET_KEYS.filter((key) => raw[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? `expected exactly one target: ${TARGET_KEYS.join(', ')}`
            : `got ${given.join(' and ')}: expected exactly one target of ${TARGET_KEYS.join(', ')}`,
      });
    }
    if (raw.action !== undefined && raw.unit === undefined) {
      ctx.addIssue({ code: 'custom', path: ['action'], message: 'action applies to a unit target only' });
    }
    if (raw.action === 'stop' && (raw.killAfter !== undefined || raw.waitExit !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['action'],
        message: 'action stop waits for systemd by itself: drop waitExit and killAfter (set TimeoutStopSec in the unit)',
      });
    }
  })
  .transform((raw): SignalOptions => {
    const target: SignalTarget =
      raw.pid !== undefined
        ? { kind: 'pid', pid: raw.pid }
        : raw.pidfile !== undefined
          ? { kind: 'pidfile', path: raw.pidfile }
          : raw.match !== undefined
            ? { kind: 'match', pattern: raw.match }
            : raw.unit !== undefined
              ? { kind: 'unit', unit: raw.unit, action: raw.action ?? 'kill' }
              : raw.cgroup !== undefined
                ? { kind: 'cgroup', path: raw.cgroup }
                : { kind: 'gpu' };
    const killAfterMs = raw.killAfter ?? null;
    return {
      target,
      signal: raw.signal,
      waitExitMs: raw.waitExit ?? (killAfterMs === null ? 0 : KILL_CONFIRM_MS),
      killAfterMs,
      missingOk: raw.missingOk,
    };
  });

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
      return [target.pid];
    case 'pidfile': {
      const pid = await readPidfile(target.path);
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
