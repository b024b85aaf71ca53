import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { PreemptdError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/**
 * The npm `systemd-notify` package: it spawns `systemd-notify` (found on PATH) with
 * `--ready`, `--status=` and `--pid=` and resolves once the binary exits. It ships no types.
 */
type SystemdNotifyPackage = (options: { ready?: boolean; status?: string; pid?: number }) => Promise<unknown>;
const notifyViaPackage = createRequire(import.meta.url)('systemd-notify') as SystemdNotifyPackage;

/** The binary the package runs; the messages it cannot express go through the same one. */
const SYSTEMD_NOTIFY = 'systemd-notify';

/**
 * Messages to systemd's notification socket. Each goes out through a short-lived
 * `systemd-notify` child, so the unit needs `NotifyAccess=all` (the sender is the child,
 * not the main pid). Messages leave one at a time, in the order they were asked for.
 */
export interface SdNotify {
  /** READY=1 with a STATUS line: start-up is complete. */
  ready(status: string): Promise<void>;
  /** STATUS=...; replaces a status still waiting its turn, unless another message is queued after that one. */
  status(status: string): Promise<void>;
  /** STOPPING=1 with a STATUS line. */
  stopping(status: string): Promise<void>;
  /** WATCHDOG=1: the service is alive. */
  watchdog(): Promise<void>;
  /** Resolves once every message asked for so far has been sent (or has failed). */
  flush(): Promise<void>;
}

/**
 * Talks to systemd when it started us with a notification socket (NOTIFY_SOCKET set);
 * returns null otherwise, so nothing is spawned outside systemd. The children read
 * NOTIFY_SOCKET from process.env (the package offers no other way), so that is the one
 * place it is read. A message that cannot be sent is logged, never thrown: systemd
 * integration must not take the agent down.
 */
export function createSdNotify(log: Logger): SdNotify | null {
  if (!process.env.NOTIFY_SOCKET) return null;
  let tail: Promise<void> = Promise.resolve();
  let queuedStatus: { text: string; sent: Promise<void> } | null = null;

  function enqueue(what: string, send: () => Promise<unknown>): Promise<void> {
    // A later status may replace a waiting one only while nothing else is queued behind it.
    if (what !== 'STATUS') queuedStatus = null;
    tail = tail.then(async () => {
      try {
        await send();
      } catch (error) {
        log.warn({ message: what, err: error }, 'could not notify systemd');
      }
    });
    return tail;
  }

  return {
    ready: (status) => enqueue('READY=1', () => notifyViaPackage({ ready: true, status })),
    status(text) {
      if (queuedStatus) {
        queuedStatus.text = text;
        return queuedStatus.sent;
      }
      const entry = { text, sent: Promise.resolve() };
      queuedStatus = entry;
      entry.sent = enqueue('STATUS', () => {
        if (queuedStatus === entry) queuedStatus = null;
        return notifyViaPackage({ status: entry.text });
      });
      return entry.sent;
    },
    // The package has no option for STOPPING=1 or WATCHDOG=1; the binary takes them as
    // plain VARIABLE=VALUE arguments, so those go to it directly.
    stopping: (status) => enqueue('STOPPING=1', () => runSystemdNotify(['STOPPING=1', `STATUS=${status}`])),
    watchdog: () => enqueue('WATCHDOG=1', () => runSystemdNotify(['WATCHDOG=1'])),
    flush: () => tail,
  };
}

/** Runs `systemd-notify ARGS...`; rejects with its stderr when it fails. */
function runSystemdNotify(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEMD_NOTIFY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new PreemptdError('ERR_COMMAND', stderr.trim() || `${SYSTEMD_NOTIFY} exited with code ${code}`))));
  });
}

/**
 * How often to send WATCHDOG=1: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises.
 * Null when the unit sets no watchdog, or when WATCHDOG_PID names another process (the
 * variables were inherited from a parent that is the one being watched).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isInteger(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}
