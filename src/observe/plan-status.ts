import type { Daemon } from '../daemon/daemon.js';
import { DaemonSubscription } from '../daemon/subscription.js';
import type { StepStatus, StepSummary } from '../notice/event.js';
import { noticeToJSON, type Notice, type NoticeKind } from '../notice/notice.js';
import type { Plan, PlanResult } from '../plan/executor.js';

export type StepState = 'pending' | 'running' | StepStatus;

/** One step run as /v1/status shows it. */
export interface StepView {
  name: string;
  type: string | null;
  state: StepState;
  startedAt: string | null;
  ms: number | null;
  error?: string;
  /** The latest progress report while running; the step's own detail once finished. */
  detail?: Record<string, unknown>;
}

/** One notice and its plan as /v1/status shows it. */
export interface NoticeView {
  notice: Record<string, unknown>;
  state: 'running' | 'finished';
  /** Why the cloud withdrew the notice, when it did. */
  withdrawn: string | null;
  planDeadline: string | null;
  startedAt: string;
  finishedAt: string | null;
  slackMs: number | null;
  steps: StepView[];
}

/** How far one notice's plan has got: what the one-line systemd status shows. */
export interface PlanProgress {
  kind: NoticeKind;
  deadline: Date | null;
  /** Runs in the plan (a step that runs in both phases counts twice). */
  steps: number;
  /** Runs finished, however they ended (a run a resumed plan had finished before a restart included). */
  done: number;
  /** Runs that failed or timed out. */
  failed: number;
}

export interface Readiness {
  ready: boolean;
  reason: string;
}

interface TrackedStep {
  name: string;
  type: string | null;
  state: StepState;
  startedAt: number | null;
  ms: number | null;
  error?: string;
  detail?: Record<string, unknown>;
}

interface Tracked {
  notice: Notice;
  startedAt: number;
  planDeadline: number | null;
  /** Set once the plan is built: its runs are listed (until then its progress is unknown). */
  planned: boolean;
  result: PlanResult | null;
  withdrawn: string | null;
  steps: Map<string, TrackedStep>;
}

export interface StatusOptions {
  /** Notice kinds that make /readyz fail while they are handled. */
  notReadyOn: readonly NoticeKind[];
  now?: () => number;
}

/** Finished notices kept for /v1/status; older ones are dropped. */
const KEEP_FINISHED = 10;

/**
 * Follows the daemon's events to answer "what is happening now": the notices being
 * handled, their plans' progress, and whether this instance should still take traffic.
 */
export class StatusTracker {
  private notReadyOn: ReadonlySet<NoticeKind>;
  private readonly tracked = new Map<string, Tracked>();
  private readonly now: () => number;
  private readonly subscription: DaemonSubscription;
  private readonly progressListeners = new Set<() => void>();

  constructor(
    private readonly daemon: Daemon,
    options: StatusOptions,
  ) {
    this.notReadyOn = new Set(options.notReadyOn);
    this.now = options.now ?? Date.now;
    this.subscription = new DaemonSubscription(daemon);
    this.subscription.on('notice', (notice) => this.track(notice));
    this.subscription.on('planStarted', (plan) => {
      this.recordPlan(plan);
      this.progressChanged();
    });
    this.subscription.on('stepStarted', (notice, name) => this.updateStep(notice.id, name, { state: 'running', startedAt: this.now() }));
    this.subscription.on('stepProgress', (notice, name, detail) => {
      const step = this.tracked.get(notice.id)?.steps.get(name);
      if (step) step.detail = { ...step.detail, ...detail };
    });
    this.subscription.on('stepFinished', (notice, summary) => {
      this.finishStep(notice.id, summary);
      this.progressChanged();
    });
    this.subscription.on('planFinished', (notice, result) => {
      this.finishPlan(notice.id, result);
      this.progressChanged();
    });
    this.subscription.on('withdrawn', (noticeId, reason) => {
      const entry = this.tracked.get(noticeId);
      if (entry) entry.withdrawn = reason;
    });
    this.subscription.on('reloaded', (config) => this.setNotReadyOn(config.readiness.notReadyOn));
  }

  setNotReadyOn(kinds: readonly NoticeKind[]): void {
    this.notReadyOn = new Set(kinds);
  }

  /**
   * Not ready from a notice of a `notReadyOn` kind until the cloud withdraws it or its
   * deadline has passed, so traffic stays away even after the plan has finished (the
   * machine is still going away). A notice without a deadline holds readiness down only
   * while its plan runs.
   */
  readiness(): Readiness {
    const now = this.now();
    const active = new Set(this.daemon.health().activeNotices);
    for (const entry of this.tracked.values()) {
      const { notice } = entry;
      if (!this.notReadyOn.has(notice.kind) || entry.withdrawn !== null) continue;
      const running = entry.result === null && active.has(notice.id);
      const deadlineAhead = notice.deadline !== null && now < notice.deadline.getTime();
      if (running || deadlineAhead) {
        const until = notice.deadline === null ? 'while its plan runs' : `until ${notice.deadline.toISOString()}`;
        return { ready: false, reason: `handling ${notice.kind} notice ${notice.id}: not ready ${until}` };
      }
    }
    return { ready: true, reason: 'no notice that affects readiness is being handled' };
  }

  /** Notices being handled and recently finished, newest first. */
  notices(): NoticeView[] {
    return [...this.tracked.values()].reverse().map((entry) => ({
      notice: noticeToJSON(entry.notice),
      state: entry.result === null ? 'running' : 'finished',
      withdrawn: entry.withdrawn,
      planDeadline: isoOrNull(entry.planDeadline),
      startedAt: new Date(entry.startedAt).toISOString(),
      finishedAt: isoOrNull(entry.result?.finishedAt ?? null),
      slackMs: entry.result?.slackMs ?? null,
      steps: [...entry.steps.values()].map((step) => ({
        name: step.name,
        type: step.type,
        state: step.state,
        startedAt: isoOrNull(step.startedAt),
        ms: step.state === 'running' && step.startedAt !== null ? this.now() - step.startedAt : step.ms,
        ...(step.error === undefined ? {} : { error: step.error }),
        ...(step.detail === undefined ? {} : { detail: step.detail }),
      })),
    }));
  }

  /**
   * Plans running now (oldest first) and the last one that finished, counted from the same
   * step states /v1/status shows, so the systemd status line can never disagree with it.
   */
  progress(): { running: PlanProgress[]; lastFinished: PlanProgress | null } {
    const entries = [...this.tracked.values()];
    const finished = entries.filter((entry) => entry.result !== null);
    const last = finished.reduce<Tracked | undefined>((latest, entry) => (latest && latest.result!.finishedAt > entry.result!.finishedAt ? latest : entry), undefined);
    return { running: entries.filter((entry) => entry.planned && entry.result === null).map(progressOf), lastFinished: last ? progressOf(last) : null };
  }

  /** Calls `listener` after every change to a plan's progress; returns a function that stops it. */
  onProgress(listener: () => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  /** Stops following the daemon. */
  close(): void {
    this.subscription.close();
    this.progressListeners.clear();
  }

  private progressChanged(): void {
    for (const listener of this.progressListeners) listener();
  }


  private track(notice: Notice): void {
    this.tracked.delete(notice.id);
    this.tracked.set(notice.id, { notice, startedAt: this.now(), planDeadline: null, planned: false, result: null, withdrawn: null, steps: new Map() });
    const finished = [...this.tracked.values()].filter((entry) => entry.result !== null);
    for (const entry of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.tracked.delete(entry.notice.id);
  }

  /** Lists every run of the plan as pending, so progress shows what is still to come. */
  private recordPlan(plan: Plan): void {
    const entry = this.tracked.get(plan.noticeId);
    if (!entry) return;
    entry.planDeadline = plan.planDeadline;
    entry.planned = true;
    for (const { name, step } of plan.runs) {
      if (!entry.steps.has(name)) entry.steps.set(name, { name, type: step.type, state: 'pending', startedAt: null, ms: null });
    }
  }

  private updateStep(noticeId: string, name: string, change: Partial<TrackedStep>): void {
    const entry = this.tracked.get(noticeId);
    if (!entry) return;
    const step = entry.steps.get(name) ?? { name, type: null, state: 'pending', startedAt: null, ms: null };
    entry.steps.set(name, { ...step, ...change });
  }

  private finishStep(noticeId: string, summary: StepSummary): void {
    this.updateStep(noticeId, summary.name, {
      type: summary.type,
      state: summary.status,
      ms: summary.ms,
      ...(summary.error === undefined ? {} : { error: summary.error }),
      ...(summary.detail === undefined ? {} : { detail: summary.detail }),
    });
  }

  private finishPlan(noticeId: string, result: PlanResult): void {
    const entry = this.tracked.get(noticeId);
    if (!entry) return;
    entry.result = result;
    entry.planDeadline = result.planDeadline;
  }
}

function progressOf({ notice, steps }: Tracked): PlanProgress {
  const states = [...steps.values()].map((step) => step.state);
  return {
    kind: notice.kind,
    deadline: notice.deadline,
    steps: states.length,
    done: states.filter((state) => state !== 'pending' && state !== 'running').length,
    failed: states.filter((state) => state === 'failed' || state === 'timed_out').length,
  };
}

function isoOrNull(epochMs: number | null): string | null {
  return epochMs === null ? null : new Date(epochMs).toISOString();
}
