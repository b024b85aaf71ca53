import { buildEvent, type StepStatus, type StepSummary } from '../notice/event.js';
import { errorMessage, PreemptdError, StepFailure } from '../lib/errors.js';
import type { HostFacts } from '../lib/host.js';
import type { Plan, Run } from './build.js';
import { StepRecorder, type RecorderDeps } from './recorder.js';
import type { StepContext, StepDetail, StepTypeLookup } from '../steps/types.js';

export interface ExecuteDeps extends RecorderDeps {
  host: HostFacts;
  /** Finds a step type by its config key (steps/registry.ts findStepType; tests pass their own). */
  lookup: StepTypeLookup;
}

export interface PlanResult {
  noticeId: string;
  /** One entry per run, in plan order; a `both` step's second run is `<name>:finish`. */
  steps: StepSummary[];
  /** Epoch ms. */
  startedAt: number;
  finishedAt: number;
  planDeadline: number | null;
  /** Plan deadline minus end: how much time was left over; null without a deadline. */
  slackMs: number | null;
}

/**
 * Runs a plan. Steps without pending `after:` start at once; a step starts as soon as every
 * step it waits for has finished, whatever that step's status: a failing step never stops
 * the others. Each step is cancelled (its signal aborts) at its own timeout or the plan
 * deadline, whichever comes first, and is reported `timed_out` at that moment even if it
 * ignores the signal. Finish-phase runs start once every notice-phase run has finished.
 * Never throws: every run ends ok / failed / timed_out / skipped.
 */
export async function executePlan(plan: Plan, deps: ExecuteDeps): Promise<PlanResult> {
  const startedAt = Date.now();
  const recorder = new StepRecorder(plan, deps);
  recorder.replayJournal();

  /** When each run started, so a step can tell what happened since the ones it follows began. */
  const runStarts = new Map<string, number>();
  const runPhase = async (runs: Run[]) => {
    const pending = new Map<string, Promise<void>>();
    for (const run of runs) {
      const waitFor = run.after.flatMap((name) => pending.get(name) ?? []);
      const settled = Promise.all(waitFor).then(async () => {
        if (recorder.outcome(run.name)) return;
        const { summary, cause } = await runStep(run, plan, deps, recorder, runStarts);
        recorder.finished(summary, cause);
      });
      pending.set(run.name, settled);
    }
    await Promise.all(pending.values());
  };

  await runPhase(plan.runs.filter((run) => run.phase === 'notice'));
  await runPhase(plan.runs.filter((run) => run.phase === 'finish'));
  const finishedAt = Date.now();
  return {
    noticeId: plan.noticeId,
    steps: recorder.finishedRuns(),
    startedAt,
    finishedAt,
    planDeadline: plan.planDeadline,
    slackMs: plan.planDeadline === null ? null : plan.planDeadline - finishedAt,
  };
}

/** A run's outcome, and what made it fail or time out (for the log's `err`). */
interface Finished {
  summary: StepSummary;
  cause?: unknown;
}

async function runStep(run: Run, plan: Plan, deps: ExecuteDeps, recorder: StepRecorder, runStarts: Map<string, number>): Promise<Finished> {
  const { step } = run;
  const started = Date.now();
  runStarts.set(run.name, started);
  const followed = run.after.flatMap((name) => runStarts.get(name) ?? []);
  const finishWith = (status: StepStatus, error?: string, detail?: StepDetail, cause?: unknown): Finished => ({
    summary: {
      name: run.name,
      type: step.type,
      status,
      ms: Date.now() - started,
      ...(error === undefined ? {} : { error }),
      ...(detail === undefined ? {} : { detail }),
    },
    ...(cause === undefined ? {} : { cause }),
  });

  const stepType = deps.lookup(step.type);
  if (!stepType) return finishWith('skipped', `unknown step type ${step.type}`);
  if (plan.planDeadline !== null && started >= plan.planDeadline) {
    return finishWith('skipped', 'plan deadline passed before the step could start');
  }

  const ownDeadline = started + step.timeoutMs;
  const byPlan = plan.planDeadline !== null && plan.planDeadline <= ownDeadline;
  const deadline = byPlan ? plan.planDeadline! : ownDeadline;
  const limit = byPlan ? 'the plan deadline' : `its ${step.timeoutMs}ms timeout`;
  const controller = new AbortController();
  let progress: Record<string, unknown> | undefined;
  const context: StepContext = {
    stepName: run.name,
    phase: run.phase,
    notice: plan.notice,
    host: deps.host,
    log: deps.log.child({ step: run.name }),
    signal: controller.signal,
    deadline,
    planDeadline: plan.planDeadline,
    followsStartedAt: followed.length ? Math.max(...followed) : plan.notice.detectedAt.getTime(),
    event: (type) =>
      buildEvent(type, plan.notice, deps.host, plan.planDeadline, type === 'plan.finished' ? recorder.finishedRuns() : []),
    finishedSteps: () => recorder.finishedRuns(),
    progress: (detail) => {
      progress = { ...progress, ...detail };
      recorder.progress(run, detail);
    },
  };

  recorder.started(run, deadline - started);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timed_out'>((resolve) => {
    // A timer can fire a millisecond before Date.now() shows its time: armed again until the
    // deadline has really passed, so a step after this one sees it passed and is skipped.
    const expire = () => {
      const left = deadline - Date.now();
      if (left > 0) {
        timer = setTimeout(expire, left);
        return;
      }
      controller.abort(new PreemptdError('ERR_STEP_TIMEOUT', `step ${run.name} reached ${limit}`));
      resolve('timed_out');
    };
    timer = setTimeout(expire, Math.max(0, deadline - started));
  });
  // Wrapped so a step that throws synchronously is a failure like any other.
  const running = Promise.resolve().then(() => stepType.run(step.options, context));
  try {
    const outcome = await Promise.race([running.then((detail) => ({ detail: detail ?? undefined })), timedOut]);
    if (outcome === 'timed_out') return finishWith('timed_out', `timed out: reached ${limit}`, progress, controller.signal.reason);
    return finishWith('ok', undefined, mergeDetail(progress, outcome.detail));
  } catch (error) {
    if (controller.signal.aborted) return finishWith('timed_out', `timed out: reached ${limit}`, progress, controller.signal.reason);
    const detail = error instanceof StepFailure ? mergeDetail(progress, error.detail) : progress;
    return finishWith('failed', errorMessage(error), detail, error);
  } finally {
    clearTimeout(timer);
    // A step that ignored its signal may still settle later; nobody is listening then.
    running.catch(() => undefined);
  }
}

function mergeDetail(a: StepDetail | undefined, b: StepDetail | undefined): StepDetail | undefined {
  return a === undefined && b === undefined ? undefined : { ...a, ...b };
}
