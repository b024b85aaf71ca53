import { PreemptdError } from '../../lib/errors.js';

/**
 * Signals a whole process group (a detached child and everything it started), ignoring a
 * group that is already gone.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (pgid <= 1) throw new PreemptdError('ERR_SIGNAL_TARGET', `refusing to signal process group ${pgid}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** True while any process of the group is still there. */
export function groupAlive(pgid: number): boolean {
  return signalGroup(pgid, 0);
}

/**
 * SIGTERM to the group, then SIGKILL after `graceMs` if anything of it is left. Returns at
 * once: the escalation runs on a timer, so a cancelled step never waits for it.
 */
export function stopGroup(pgid: number, graceMs: number): void {
  if (!signalGroup(pgid, 'SIGTERM')) return;
  setTimeout(() => {
    if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
  }, graceMs);
}
