import type { Daemon } from '../daemon/daemon.js';
import type { DaemonState } from '../daemon/types.js';
import { DaemonSubscription } from '../daemon/subscription.js';
import type { Logger } from '../lib/log.js';
import type { MetadataRead } from '../providers/types.js';
import { StatusTracker } from './plan-status.js';
import { createSdNotify, watchdogIntervalMs, type SdNotify } from './sd-notify.js';
import { describeStatus } from './systemd-status-line.js';

/** Consecutive failed metadata reads before the status says the metadata service is failing. */
const FAILING_AFTER_ERRORS = 3;

export interface SystemdNotifierOptions {
  daemon: Daemon;
  log: Logger;
  /** Where WATCHDOG_USEC and WATCHDOG_PID are read; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Injected by tests; otherwise created from NOTIFY_SOCKET (null outside systemd). */
  sd?: SdNotify | null;
  /** Where plan progress is read (the one /v1/status shows); one of its own when not given. */
  status?: StatusTracker;
}

export interface SystemdNotifier {
  /** Stops the watchdog timer and waits for messages still on their way. */
  close(): Promise<void>;
}

/**
 * Follows the daemon for systemd (Type=notify):
 * - READY=1 once start-up is complete: the config loaded, the state directory locked, the
 *   local server listening, the provider known and the watch started (daemon state
 *   `watching`). Not after the first metadata answer, which on Azure can take two minutes:
 *   units ordered after preemptd (and boot) would wait for it. STATUS says when the first
 *   read is still pending, and names the metadata error once failures go on.
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

  const status = options.status ?? new StatusTracker(daemon, { notReadyOn: [] });
  let metadataError: string | null = null;
  let awaitingFirstRead = true;
  let ready = false;
  let lastStatus = '';

  const currentStatus = () =>
    describeStatus({
      provider: daemon.health().provider,
      awaitingFirstRead,
      metadataError,
      ...status.progress(),
      stopping: daemon.state === 'stopping' || daemon.state === 'stopped',
    });
  const updateStatus = () => {
    if (!ready) return;
    const line = currentStatus();
    if (line === lastStatus) return;
    lastStatus = line;
    void sd.status(line);
  };

  const onRead = (read: MetadataRead) => {
    // Failing only after a streak, and named by the error that began it: one source failing
    // among several that answer, or a changing message, must not spawn a STATUS per poll.
    if (read.ok) metadataError = null;
    else if (metadataError === null && daemon.health().consecutiveErrors >= FAILING_AFTER_ERRORS) {
      metadataError = read.error ?? (read.status ? `HTTP ${read.status}` : 'failed');
    }
    awaitingFirstRead = false;
    updateStatus();
  };
  const onState = (state: DaemonState) => {
    if (state === 'watching' && !ready) {
      ready = true;
      lastStatus = currentStatus();
      log.info({ status: lastStatus }, 'ready: telling systemd');
      void sd.ready(lastStatus);
      return;
    }
    if (state !== 'stopping') return;
    lastStatus = currentStatus();
    void sd.stopping(lastStatus);
  };

  const subscription = new DaemonSubscription(daemon).on('read', onRead).on('state', onState);
  const stopFollowingProgress = status.onProgress(updateStatus);

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
      stopFollowingProgress();
      if (!options.status) status.close();
      await sd.flush();
    },
  };
}
