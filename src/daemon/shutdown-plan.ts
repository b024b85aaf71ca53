import { readFile } from 'node:fs/promises';
import type { Config } from '../config/types.js';
import type { Daemon } from './daemon.js';
import type { Logger } from '../lib/log.js';
import { bootId as kernelBootId } from '../lib/boot-id.js';
import { noticeId, type Notice } from '../notice/notice.js';
import { runCommand } from '../lib/run-command.js';

/** systemd's DefaultTimeoutStopSec, for when the unit's own value cannot be read. */
export const DEFAULT_STOP_TIMEOUT_MS = 90_000;
/** Limit of each systemctl call: the stop timeout is already running. */
const SYSTEMCTL_TIMEOUT_MS = 2000;

const TIMESPAN_UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a systemd time span as `systemctl show` prints it (`2min 10s`, `45s`, `500ms`).
 * Null for `infinity` or anything else.
 */
export function parseTimespan(text: string): number | null {
  const parts = text.trim().split(/\s+/);
  let total = 0;
  for (const part of parts) {
    const match = /^(\d+(?:\.\d+)?)(us|ms|s|min|h|d)$/.exec(part);
    if (!match) return null;
    total += Number(match[1]) * TIMESPAN_UNIT_MS[match[2]!]!;
  }
  return parts.length > 0 ? Math.round(total) : null;
}

/** This process's systemd service from /proc/self/cgroup (`0::/system.slice/preemptd.service`). */
export function serviceFromCgroup(cgroup: string): string | null {
  for (const line of cgroup.split('\n')) {
    const service = line
      .slice(line.lastIndexOf(':') + 1)
      .split('/')
      .findLast((segment) => segment.endsWith('.service'));
    if (service) return service;
  }
  return null;
}

export interface ShutdownProbe {
  /** True while the host is shutting down (poweroff, reboot, halt). */
  hostShuttingDown(): Promise<boolean>;
  /** The unit's TimeoutStopSec in ms, or null when it cannot be read. */
  stopTimeoutMs(): Promise<number | null>;
  /** Identifies this boot, so the shutdown notice of one boot is handled once. */
  bootId(): Promise<string>;
}

/**
 * Asks systemd. `systemctl is-system-running` prints `stopping` once shutdown.target's
 * jobs run (poweroff, reboot, an ACPI power-off such as GCP's preemption soft-off); a plain
 * `systemctl stop preemptd` or a restart leaves it `running` or `degraded`. Both reads are
 * public (no root needed); as a non-root user systemctl goes through D-Bus, which is why
 * the unit is ordered After=dbus.service (so D-Bus outlives it at shutdown). Outside
 * systemd (containers) there is no systemctl: never a host shutdown.
 */
export function systemdShutdownProbe(): ShutdownProbe {
  const options = () => ({ signal: AbortSignal.timeout(SYSTEMCTL_TIMEOUT_MS), timeoutMs: SYSTEMCTL_TIMEOUT_MS });
  return {
    async hostShuttingDown() {
      const result = await runCommand('systemctl', ['is-system-running'], options());
      return result.stdout.trim() === 'stopping';
    },
    async stopTimeoutMs() {
      const unit = serviceFromCgroup(await readFile('/proc/self/cgroup', 'utf8'));
      if (!unit) return null;
      const result = await runCommand('systemctl', ['show', '--property=TimeoutStopUSec', '--value', '--', unit], options());
      return result.exitCode === 0 ? parseTimespan(result.stdout) : null;
    },
    async bootId() {
      const id = kernelBootId();
      if (id === '') throw new Error('this kernel has no boot id');
      return id;
    },
  };
}

/** The notice the agent raises for its own shutdown: deadline = signal time + stop timeout. */
export function shutdownNotice(at: number, stopTimeoutMs: number, bootId: string, signal: NodeJS.Signals): Notice {
  return {
    id: noticeId('local', 'shutdown', bootId),
    provider: 'local',
    kind: 'shutdown',
    deadline: new Date(at + stopTimeoutMs),
    detectedAt: new Date(at),
    instance: {},
    raw: { signal, systemState: 'stopping', stopTimeoutMs },
  };
}

export interface ShutdownPlanOptions {
  daemon: Daemon;
  config: Config;
  log: Logger;
  probe?: ShutdownProbe;
  now?: () => number;
}

export interface ShutdownPlan {
  /**
   * Call on SIGTERM before daemon.stop(). With `onShutdownSignal: run-plan`, when the host
   * is shutting down, starts the plan for a `shutdown` notice; daemon.stop() then waits
   * for it (it is bounded by the stop timeout minus safetyMargin). Never throws.
   */
  beforeStop(signal: NodeJS.Signals): Promise<void>;
}

export function shutdownPlan(options: ShutdownPlanOptions): ShutdownPlan {
  const { daemon, log } = options;
  const probe = options.probe ?? systemdShutdownProbe();
  const now = options.now ?? Date.now;
  let action = options.config.onShutdownSignal;
  daemon.on('reloaded', (config) => (action = config.onShutdownSignal));

  return {
    async beforeStop(signal) {
      if (action !== 'run-plan' || signal !== 'SIGTERM') return;
      const at = now();
      try {
        if (!(await probe.hostShuttingDown())) {
          log.info('SIGTERM without a host shutdown (systemctl stop, restart): exiting without the shutdown plan');
          return;
        }
        let stopTimeoutMs = await probe.stopTimeoutMs().catch(() => null);
        if (stopTimeoutMs === null) {
          log.warn({ assumedMs: DEFAULT_STOP_TIMEOUT_MS }, "could not read the unit's TimeoutStopSec: assuming systemd's default");
          stopTimeoutMs = DEFAULT_STOP_TIMEOUT_MS;
        }
        const notice = shutdownNotice(at, stopTimeoutMs, await probe.bootId().catch(() => String(at)), signal);
        if (!daemon.raiseNotice(notice)) log.info({ noticeId: notice.id }, 'the shutdown plan has already run for this boot');
      } catch (error) {
        log.error({ err: error }, 'could not tell whether the host is shutting down: exiting without the shutdown plan');
      }
    },
  };
}
