import { scrubSecrets, scrubValue, type Logger } from '../lib/log.js';
import type { StepSummary } from '../notice/event.js';
import type { Journal } from '../notice/journal.js';
import type { Plan, Run } from './build.js';

/** Told of every run's start, progress and outcome (the daemon turns these into its events). */
export interface StepListener {
  onStepStarted?(name: string): void;
  onStepProgress?(name: string, detail: Record<string, unknown>): void;
  /** Also for a run the journal had as finished before a restart (see fromJournal). */
  onStepFinished?(summary: StepSummary): void;
}

export interface RecorderDeps extends StepListener {
  log: Logger;
  /** Keeps outcomes across a restart; without one (simulate) nothing is kept or replayed. */
  journal?: Pick<Journal, 'finishedSteps' | 'recordStep'>;
}

/** True for an outcome that was recorded before a restart and is only reported again now. */
export function fromJournal(summary: StepSummary): boolean {
  return summary.detail?.fromJournal === true;
}

/** The free text of an outcome (error, detail) without secrets; name, type and status are ours. */
function scrubSummary(summary: StepSummary): StepSummary {
  const { error, detail } = summary;
  return { ...summary, ...(error === undefined ? {} : { error: scrubSecrets(error) }), ...(detail === undefined ? {} : { detail: scrubValue(detail) }) };
}

/**
 * The one place a step outcome is recorded. The executor reports every run here (started,
 * progress, finished) and nothing else records one: from here each outcome goes to the log,
 * the journal and the listener, and into the list of finished runs that finish-phase steps
 * (summary webhooks) read. Runs the journal had as finished before a restart are reported
 * finished at once, marked `fromJournal`, and are not run again.
 * Every outcome and progress report is scrubbed of registered secrets here, once, before it
 * reaches the log, the journal, /v1/status or the plan.finished webhook: a step's detail can
 * hold a URL path with a token in it, or a service's error body that echoes one.
 * What it feeds never holds up or breaks the plan: a slow disk must not keep a plan past its
 * deadline, so nothing is awaited and a failure is logged.
 */
export class StepRecorder {
  private readonly outcomes = new Map<string, StepSummary>();

  constructor(
    private readonly plan: Plan,
    private readonly deps: RecorderDeps,
  ) {}

  /** Reports the runs of this plan that the journal had as finished; call before any run starts. */
  replayJournal(): void {
    const journaled = this.deps.journal?.finishedSteps(this.plan.noticeId);
    for (const run of this.plan.runs) {
      const recorded = journaled?.get(run.name);
      if (!recorded) continue;
      const summary = scrubSummary({ ...recorded, detail: { ...recorded.detail, fromJournal: true } });
      this.outcomes.set(run.name, summary);
      this.deps.log.info({ step: run.name, status: summary.status }, 'step already finished before restart, not run again');
      this.notify(() => this.deps.onStepFinished?.(summary));
    }
  }

  /** The outcome recorded for a run so far, if any. */
  outcome(name: string): StepSummary | undefined {
    return this.outcomes.get(name);
  }

  started(run: Run, deadlineInMs: number): void {
    this.deps.log.debug({ step: run.name, type: run.step.type, deadlineInMs }, 'step started');
    this.notify(() => this.deps.onStepStarted?.(run.name));
  }

  progress(run: Run, detail: Record<string, unknown>): void {
    const scrubbed = scrubValue(detail);
    this.notify(() => this.deps.onStepProgress?.(run.name, scrubbed));
  }

  /** `cause`: what a failed or timed-out run threw or was cancelled with; the log line carries it as `err`. */
  finished(outcome: StepSummary, cause?: unknown): void {
    const summary = scrubSummary(outcome);
    this.outcomes.set(summary.name, summary);
    const { name, type, status, ms, error, detail } = summary;
    // A skipped run has a reason, not an error: it never started.
    const why = cause !== undefined ? { err: cause } : error === undefined ? {} : { reason: error };
    this.deps.log[status === 'ok' ? 'info' : 'warn']({ step: name, type, status, ms, ...why, detail }, 'step finished');
    this.notify(() => this.deps.journal?.recordStep(this.plan.noticeId, summary));
    this.notify(() => this.deps.onStepFinished?.(summary));
  }

  /** Finished runs so far, in plan order. */
  finishedRuns(): StepSummary[] {
    return this.plan.runs.flatMap((run) => this.outcomes.get(run.name) ?? []);
  }

  private notify(effect: () => unknown): void {
    const report = (error: unknown) => this.deps.log.error({ err: error }, 'recording a step outcome failed');
    try {
      const result = effect();
      if (result instanceof Promise) result.catch(report);
    } catch (error) {
      report(error);
    }
  }
}
