import type { Config } from '../config/types.js';
import type { HostFacts } from '../lib/host.js';
import type { Logger } from '../lib/log.js';
import type { StepSummary } from '../notice/event.js';
import type { Notice, SourceName } from '../notice/notice.js';
import type { Plan, PlanResult } from '../plan/executor.js';
import type { MetadataRead, Provider } from '../providers/types.js';
import type { SourcesHealth } from './source-health.js';

/**
 * starting: loading the journal, detecting the provider.
 * watching: the watch loop runs; plans may be running alongside.
 * stopping: stop() was called; in-flight plans finish (they are bounded by deadlines).
 * stopped:  everything has ended.
 * failed:   start-up could not complete (no provider found); run() rejects.
 */
export type DaemonState = 'starting' | 'watching' | 'stopping' | 'stopped' | 'failed';

/** What observers (logs, metrics, systemd, the local server) can follow. */
export interface DaemonEvents {
  state: [state: DaemonState];
  providerReady: [provider: SourceName, how: string];
  read: [read: MetadataRead];
  notice: [notice: Notice];
  /** A running plan's notice with a new deadline (the same event, re-timed). */
  noticeMoved: [notice: Notice];
  withdrawn: [noticeId: string, reason: string];
  /** The plan built for a notice (with its runs), before its first step starts. */
  planStarted: [plan: Plan];
  stepStarted: [notice: Notice, stepName: string];
  /** A running step's progress report (bytes moved, pids seen), as given to context.progress. */
  stepProgress: [notice: Notice, stepName: string, detail: Record<string, unknown>];
  /**
   * A run's outcome. A resumed plan first reports the runs the journal had as finished
   * before the restart, with `detail.fromJournal: true` (fromJournal() in plan/recorder.ts).
   */
  stepFinished: [notice: Notice, summary: StepSummary];
  planFinished: [notice: Notice, result: PlanResult];
  /** reload() put a new config into effect. */
  reloaded: [config: Config];
}

export interface DaemonDeps {
  config: Config;
  log: Logger;
  /** Injected by tests; otherwise created from config (detected when `auto`). */
  provider?: Provider;
  host?: HostFacts;
  now?: () => number;
}

/** Health facts for /healthz, status lines and the watchdog. */
export interface DaemonHealth extends SourcesHealth {
  state: DaemonState;
  provider: SourceName | null;
  activeNotices: string[];
}
