import type { Daemon } from '../daemon/daemon.js';
import type { DaemonState } from '../daemon/types.js';
import { DaemonSubscription } from '../daemon/subscription.js';
import type { StepSummary } from '../notice/event.js';
import type { Logger } from '../lib/log.js';
import type { Notice } from '../notice/notice.js';
import type { Plan } from '../plan/executor.js';
import type { MetadataRead } from '../providers/types.js';
import { createSdNotify, watchdogIntervalMs, type SdNotify } from './sd-notify.js';
import { describeStatus, type PlanProgress } from './systemd-status-line.js';

/** Consecutive failed metadata reads before the status says the metadata service is failing. */
const FAILING_AFTER_ERRORS = 3;

export interface SystemdNotifierOptions {
  daemon: Daemon;
  log: Logger;
  /** Where WATCHDOG_USEC and WATCHDOG_PID are read; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Injected by tests; otherwise created from NOTIFY_SOCKET (null outside systemd). */
  sd?: SdNotify | null;
}

export interface SystemdNotifier {
  /** Stops the watchdog timer and waits for messages still on their way. */
  close(): Promise<void>;
}

/**
 * Follows the daemon for systemd (Type=notify):
 * - READY=1 once the watch loop has completed its first metadata request (the config is
 *   loaded and the provider detected before that). A failed first read counts: the agent
 *   is up and retrying, and its STATUS says so once the failures go on.
 * - STATUS= on every change worth a glance in `systemctl status`, never per poll.
 * - STOPPING=1 when the daemon starts stopping.
 * - WATCHDOG=1 every half WATCHDOG_USEC, only while the watch loop is really alive
 *   (daemon.health().watchAlive): a stalled loop stops the pings and systemd restarts us.
 * Returns null when systemd did not start us with a notification socket.
 */
export function attachSystemdNotifier(options: SystemdNotifierOptions): SystemdNotifier | null {
  const { daemon, log } = options;
  const env = options.env ?? process.env;
  const sd = options.sd === undefined ? createSdNotify(log) : options.sd;
  if (!sd) return null;

  const running = new Map<string, PlanProgress>();
  let lastFinished: PlanProgress | null = null;
  let metadataError: string | null = null;
  let ready = false;
  let lastStatus = '';

  const currentStatus = () =>
    describeStatus({
      provider: daemon.health().provider,
      metadataError,
      running: [...running.values()],
      lastFinished,
      stopping: daemon.state === 'stopping' || daemon.state === 'stopped',
    });
  const updateStatus = () => {
    if (!ready) return;
    const status = currentStatus();
    if (status === lastStatus) return;
    lastStatus = status;
    void sd.status(status);
  };

  const onRead = (read: MetadataRead) => {
    // Failing only after a streak, and named by the error that began it: one source failing
    // among several that answer, or a changing message, must not spawn a STATUS per poll.
    if (read.ok) metadataError = null;
    else if (metadataError === null && daemon.health().consecutiveErrors >= FAILING_AFTER_ERRORS) {
      metadataError = read.error ?? (read.status ? `HTTP ${read.status}` : 'failed');
    }
    if (ready) return updateStatus();
    ready = true;
    lastStatus = currentStatus();
    log.info({ status: lastStatus }, 'ready: telling systemd');
    void sd.ready(lastStatus);
  };
  const onPlanStarted = ({ notice, runs }: Plan) => {
    running.set(notice.id, { kind: notice.kind, deadline: notice.deadline, steps: runs.length, done: 0, failed: 0 });
    updateStatus();
  };
  // Runs a resumed plan had finished before a restart are reported finished too: counted here.
  const onStepFinished = (notice: Notice, summary: StepSummary) => {
    const progress = running.get(notice.id);
    if (!progress) return;
    progress.done += 1;
    if (summary.status === 'failed' || summary.status === 'timed_out') progress.failed += 1;
    updateStatus();
  };
  const onPlanFinished = (notice: Notice) => {
    lastFinished = running.get(notice.id) ?? lastFinished;
    running.delete(notice.id);
    updateStatus();
  };
  const onState = (state: DaemonState) => {
    if (state !== 'stopping') return;
    lastStatus = currentStatus();
    void sd.stopping(lastStatus);
  };

  const subscription = new DaemonSubscription(daemon)
    .on('read', onRead)
    .on('planStarted', onPlanStarted)
    .on('stepFinished', onStepFinished)
    .on('planFinished', onPlanFinished)
    .on('state', onState);

  const intervalMs = watchdogIntervalMs(env, process.pid);
  let stalled = false;
  const timer =
    intervalMs === null
      ? null
      : setInterval(() => {
          const health = daemon.health();
          if (health.watchAlive) {
            stalled = false;
            void sd.watchdog();
          } else if (health.state === 'watching' && !stalled) {
            stalled = true;
            log.error(
              { lastReadAt: health.lastReadAt === null ? null : new Date(health.lastReadAt).toISOString(), stallThresholdMs: health.stallThresholdMs },
              'watch loop stalled: withholding watchdog pings so systemd restarts the agent',
            );
          }
        }, intervalMs);
  timer?.unref();
  if (intervalMs !== null) log.info({ intervalMs }, 'systemd watchdog enabled');

  return {
    async close() {
      if (timer) clearInterval(timer);
      subscription.close();
      await sd.flush();
    },
  };
}
