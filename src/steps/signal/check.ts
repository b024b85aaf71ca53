import { CommandNotFound, errorMessage } from '../../lib/errors.js';
import { isRunning } from './proc.js';
import { unitSignaller } from './systemd-unit.js';
import { cgroupDirectory, cgroupProcesses, gpuProcesses, matchProcesses, readPidfile, refuseSelfAndAncestors, safeTargets } from './targets.js';
import type { CheckContext, CheckResult } from '../types.js';
import type { SignalOptions, SignalTarget } from './options.js';

/** Time limit of one systemctl / nvidia-smi call during a check. */
const TOOL_TIMEOUT_MS = 5_000;
/** Pids listed in a check line; the rest are counted. */
const SHOWN_PIDS = 5;

/**
 * Signal 0 delivers nothing but runs the kernel's existence and permission checks, so it
 * tells whether the step could signal `pid` without touching it.
 */
function permission(pid: number): 'ok' | 'gone' | 'denied' {
  try {
    process.kill(pid, 0);
    return 'ok';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? 'denied' : 'gone';
  }
}

function listPids(pids: number[]): string {
  const shown = pids.slice(0, SHOWN_PIDS).join(', ');
  return pids.length > SHOWN_PIDS ? `${shown} and ${pids.length - SHOWN_PIDS} more` : shown;
}

/** A check line for processes found by a pattern, cgroup or GPU: found, and signallable. */
function foundProcesses(what: string, pids: number[], none: string): CheckResult {
  if (pids.length === 0) return { what, ok: false, reason: none };
  const denied = pids.filter((pid) => permission(pid) === 'denied');
  if (denied.length > 0) {
    return { what, ok: false, reason: `found ${listPids(denied)}, but ${DENIED}` };
  }
  return { what, ok: true, reason: `${pids.length} process${pids.length === 1 ? '' : 'es'}: ${listPids(pids)}` };
}

async function pidState(pid: number): Promise<'running' | 'gone' | 'denied'> {
  const access = permission(pid);
  if (access === 'ok' && (await isRunning(pid))) return 'running';
  return access === 'denied' ? 'denied' : 'gone';
}

const DENIED = "preemptd may not signal it (another user's process: run preemptd as that user or root)";

async function checkTarget(target: SignalTarget, context: CheckContext): Promise<CheckResult> {
  const tool = { signal: context.signal, timeoutMs: TOOL_TIMEOUT_MS };
  switch (target.kind) {
    case 'pid': {
      const what = `pid ${target.pid}`;
      await refuseSelfAndAncestors(target.pid);
      const state = await pidState(target.pid);
      if (state === 'running') return { what, ok: true, reason: 'is running' };
      return { what, ok: false, reason: state === 'denied' ? `runs, but ${DENIED}` : 'is not running' };
    }
    case 'pidfile': {
      const what = `pidfile ${target.path}`;
      const pid = await readPidfile(target.path);
      if (pid === undefined) return { what, ok: false, reason: 'does not exist: is the workload running, and does it write this file?' };
      await refuseSelfAndAncestors(pid, target.path);
      const state = await pidState(pid);
      if (state === 'running') return { what, ok: true, reason: `names pid ${pid}, which is running` };
      return { what, ok: false, reason: state === 'denied' ? `names pid ${pid}, but ${DENIED}` : `names pid ${pid}, which is not running (stale pidfile)` };
    }
    case 'match': {
      const what = `processes matching /${target.pattern.source}/`;
      return foundProcesses(what, await safeTargets(await matchProcesses(target.pattern)), 'no process matches now');
    }
    case 'cgroup': {
      const what = `cgroup ${cgroupDirectory(target.path)}`;
      return foundProcesses(what, await safeTargets(await cgroupProcesses(target.path)), 'no process in it (or it does not exist)');
    }
    case 'gpu': {
      const pids = await gpuProcesses(tool);
      // One config serves GPU and CPU nodes: on a CPU node the step finds nothing to signal.
      if (pids === 'tool-missing') return { what: 'GPU processes', ok: true, reason: 'no GPU processes here (nvidia-smi absent): on this node the step signals no one' };
      return foundProcesses('GPU processes (nvidia-smi)', await safeTargets(pids), 'nvidia-smi lists no compute process now');
    }
    case 'unit': {
      const what = `systemd unit ${target.unit}`;
      const active = await unitSignaller(tool).isRunning(target.unit);
      return active ? { what, ok: true, reason: 'is active' } : { what, ok: false, reason: 'is not active (or not loaded): systemctl is-active says so' };
    }
  }
}

/** `check` of the signal step: the target exists now and preemptd may signal it. Sends nothing. */
export async function checkSignalStep(options: SignalOptions, context: CheckContext): Promise<CheckResult[]> {
  try {
    return [await checkTarget(options.target, context)];
  } catch (error) {
    const reason = error instanceof CommandNotFound ? error.message : `could not look: ${errorMessage(error)}`;
    return [{ what: `${options.target.kind} target`, ok: false, reason }];
  }
}
