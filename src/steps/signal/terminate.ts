import { sleep } from '../../lib/backoff.js';
import { isRunning } from './proc.js';

/** How one process ended; the signal step reports one per pid. */
export type ProcessOutcome =
  /** The signal was delivered and nobody asked to wait (e.g. SIGUSR1 to checkpoint). */
  | 'signalled'
  | 'exited'
  /** Still there at `killAfter`, gone after SIGKILL (or the signal itself was SIGKILL). */
  | 'killed'
  | 'still_alive'
  | 'not_found'
  | 'permission_denied';

export type SendResult = 'sent' | 'not_found' | 'permission_denied';

/** How to signal one kind of target (a pid, a systemd unit) and tell whether it still runs. */
export interface Signaller<Target> {
  send(target: Target, signal: NodeJS.Signals): SendResult | Promise<SendResult>;
  isRunning(target: Target): Promise<boolean>;
}

export interface TerminateOptions {
  signal: NodeJS.Signals;
  /** After the last signal sent, how long to wait for the processes to be gone; 0: do not wait. */
  waitExitMs: number;
  /** Send SIGKILL to processes still alive this long after the first signal; null: never. */
  killAfterMs: number | null;
  /** Stops every wait (the step timeout or the plan deadline). */
  abort: AbortSignal;
  /** Epoch ms no wait may pass. */
  deadline: number;
  /** Told how many targets are still there whenever that number changes while waiting. */
  onWait?: (alive: number) => void;
}

export interface TerminateResult<Target> {
  outcomes: Map<Target, ProcessOutcome>;
  /** The abort signal or the deadline cut a wait short, with targets still there. */
  interrupted: boolean;
}

const FIRST_POLL_MS = 2;
const MAX_POLL_MS = 100;

/** Signals processes by pid with kill(2). */
export const processSignaller: Signaller<number> = {
  send(pid, signal) {
    try {
      process.kill(pid, signal);
      return 'sent';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ESRCH') return 'not_found';
      if (code === 'EPERM') return 'permission_denied';
      throw error;
    }
  },
  isRunning,
};

/** Polls until every target is gone, `until` passes or `abort` fires; returns the survivors. */
async function waitForExit<Target>(
  targets: Target[],
  signaller: Signaller<Target>,
  until: number,
  options: TerminateOptions,
): Promise<Target[]> {
  const { abort } = options;
  let alive = targets;
  let pause = FIRST_POLL_MS;
  while (alive.length > 0 && !abort.aborted) {
    const running = await Promise.all(alive.map((target) => signaller.isRunning(target)));
    const before = alive.length;
    alive = alive.filter((_, index) => running[index]);
    if (alive.length !== before) options.onWait?.(alive.length);
    const left = until - Date.now();
    if (alive.length === 0 || left <= 0) break;
    await sleep(Math.min(pause, left), abort);
    // Most processes exit within milliseconds of the signal; slow ones are polled less often.
    pause = Math.min(pause * 2, MAX_POLL_MS);
  }
  return alive;
}

/**
 * Sends `signal` to every target, then (as asked) waits for them to exit and escalates to
 * SIGKILL. Never throws for a target that vanished or that we may not signal: those are
 * outcomes.
 */
export async function terminate<Target>(
  targets: readonly Target[],
  signaller: Signaller<Target>,
  options: TerminateOptions,
): Promise<TerminateResult<Target>> {
  const outcomes = new Map<Target, ProcessOutcome>();
  const sendAll = async (batch: readonly Target[], signal: NodeJS.Signals) => {
    const results = await Promise.all(batch.map((target) => signaller.send(target, signal)));
    return batch.filter((target, index) => {
      const result = results[index]!;
      if (result !== 'sent') outcomes.set(target, result);
      return result === 'sent';
    });
  };
  const waitUntil = (ms: number) => Math.min(Date.now() + ms, options.deadline);
  const settle = (candidates: Target[], survivors: Target[], outcome: ProcessOutcome) => {
    const left = new Set(survivors);
    for (const target of candidates) outcomes.set(target, left.has(target) ? 'still_alive' : outcome);
  };
  const goneOutcome: ProcessOutcome = options.signal === 'SIGKILL' ? 'killed' : 'exited';
  // The abort signal and the deadline check may fire in either order: either ends waiting.
  const cutShort = () => options.abort.aborted || Date.now() >= options.deadline;

  const delivered = await sendAll(targets, options.signal);
  if (options.killAfterMs !== null) {
    const stubborn = await waitForExit(delivered, signaller, waitUntil(options.killAfterMs), options);
    settle(delivered, stubborn, goneOutcome);
    if (stubborn.length > 0 && !cutShort()) {
      const escalated = await sendAll(stubborn, 'SIGKILL');
      // A target that vanished between the wait and SIGKILL exited by itself.
      for (const target of stubborn) if (outcomes.get(target) === 'not_found') outcomes.set(target, goneOutcome);
      const survivors = await waitForExit(escalated, signaller, waitUntil(options.waitExitMs), options);
      settle(escalated, survivors, 'killed');
    }
  } else if (options.waitExitMs > 0) {
    const survivors = await waitForExit(delivered, signaller, waitUntil(options.waitExitMs), options);
    settle(delivered, survivors, goneOutcome);
  } else {
    for (const target of delivered) outcomes.set(target, 'signalled');
  }
  const waitingLeft = [...outcomes.values()].includes('still_alive');
  return { outcomes, interrupted: waitingLeft && cutShort() };
}
