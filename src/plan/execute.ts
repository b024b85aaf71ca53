import { buildEvent, type StepStatus, type StepSummary } from '../notice/event.js';
import { errorMessage, PreemptdError, StepFailure } from '../lib/errors.js';
import type { HostFacts } from '../lib/host.js';
import { scrubSecrets, type Logger } from '../lib/log.js';
import type { Plan, PlannedStep } from './build.js';
import type { StepContext, StepDetail, StepTypeLookup } from '../steps/types.js';

export interface ExecuteDeps {
  log: Logger;
  host: HostFacts;
  /** Steps already finished before a restart (from the journal): reported, not run again. */
  finished?: ReadonlyMap<string, StepSummary>;
  /**
   * Cross-cutting effects (journal, metrics, status lines). They may return a promise: it is
   * not awaited (a slow disk must not hold the plan past its deadline) and a failure is logged.
   */
  onStepStarted?(name: string): void;
  onStepFinished?(summary: StepSummary): void;
  onStepProgress?(name: string, detail: Record<string, unknown>): void;
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

/** The name a `both` step's finish run is reported and journaled under. */
export function finishRunName(stepName: string): string {
  return `${stepName}:finish`;
}

export interface Run {
  name: string;
  step: PlannedStep;
  phase: 'notice' | 'finish';
  after: string[];
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
  const { noticeRuns, finishRuns } = splitRuns(plan);
  const outcomes = new Map<string, StepSummary>();
  const order = [...noticeRuns, ...finishRuns].map((run) => run.name);
  const finishedSoFar = () => order.flatMap((name) => outcomes.get(name) ?? []);

  const runPhase = async (runs: Run[]) => {
    const pending = new Map<string, Promise<StepSummary>>();
    for (const run of runs) {
      const waitFor = run.after.flatMap((name) => pending.get(name) ?? []);
      const outcome = Promise.all(waitFor).then(async () => {
        const summary = await settleRun(run, plan, deps, finishedSoFar);
        outcomes.set(run.name, summary);
        return summary;
      });
      pending.set(run.name, outcome);
    }
    await Promise.all(pending.values());
  };

  await runPhase(noticeRuns);
  await runPhase(finishRuns);
  const finishedAt = Date.now();
  return {
    noticeId: plan.noticeId,
    steps: finishedSoFar(),
    startedAt,
    finishedAt,
    planDeadline: plan.planDeadline,
    slackMs: plan.planDeadline === null ? null : plan.planDeadline - finishedAt,
  };
}

/**
 * Notice-phase runs wait only for notice-phase runs: a dependency on a finish-only step
 * could never be met before the finish phase, so it counts as satisfied there.
 * Finish-phase runs wait for the finish runs of the steps they name (notice runs are done).
 */
export function splitRuns(plan: Plan): { noticeRuns: Run[]; finishRuns: Run[] } {
  const phaseOf = new Map(plan.steps.map((step) => [step.name, step.phase]));
  const noticeRuns: Run[] = [];
  const finishRuns: Run[] = [];
  for (const step of plan.steps) {
    if (step.phase !== 'finish') {
      const after = step.after.filter((name) => phaseOf.get(name) !== 'finish');
      noticeRuns.push({ name: step.name, step, phase: 'notice', after });
    }
    if (step.phase !== 'notice') {
      const finishName = step.phase === 'both' ? finishRunName(step.name) : step.name;
      const after = step.after
        .filter((name) => phaseOf.get(name) !== 'notice')
        .map((name) => (phaseOf.get(name) === 'both' ? finishRunName(name) : name));
      finishRuns.push({ name: finishName, step, phase: 'finish', after });
    }
  }
  return { noticeRuns, finishRuns };
}

async function settleRun(
  run: Run,
  plan: Plan,
  deps: ExecuteDeps,
  finishedSoFar: () => StepSummary[],
): Promise<StepSummary> {
  const recorded = deps.finished?.get(run.name);
  if (recorded) {
    deps.log.info({ step: run.name, status: recorded.status }, 'step already finished before restart, not run again');
    return { ...recorded, detail: { ...recorded.detail, fromJournal: true } };
  }
  const summary = await runStep(run, plan, deps, finishedSoFar);
  const { name, type, status, ms, error } = summary;
  deps.log[status === 'ok' ? 'info' : 'warn']({ step: name, type, status, ms, error, detail: summary.detail }, 'step finished');
  callSafely(deps.log, () => deps.onStepFinished?.(summary));
  return summary;
}

async function runStep(run: Run, plan: Plan, deps: ExecuteDeps, finishedSoFar: () => StepSummary[]): Promise<StepSummary> {
  const { step } = run;
  const started = Date.now();
  const finishWith = (status: StepStatus, error?: string, detail?: StepDetail): StepSummary => ({
    name: run.name,
    type: step.type,
    status,
    ms: Date.now() - started,
    ...(error === undefined ? {} : { error: scrubSecrets(error) }),
    ...(detail === undefined ? {} : { detail }),
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
    event: (type) =>
      buildEvent(type, plan.notice, deps.host, plan.planDeadline, type === 'plan.finished' ? finishedSoFar() : []),
    finishedSteps: finishedSoFar,
    progress: (detail) => {
      progress = { ...progress, ...detail };
      callSafely(deps.log, () => deps.onStepProgress?.(run.name, detail));
    },
  };

  deps.log.debug({ step: run.name, type: step.type, deadlineInMs: deadline - started }, 'step started');
  callSafely(deps.log, () => deps.onStepStarted?.(run.name));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timed_out'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new PreemptdError('ERR_STEP_TIMEOUT', `step ${run.name} reached ${limit}`));
      resolve('timed_out');
    }, Math.max(0, deadline - started));
  });
  // Wrapped so a step that throws synchronously is a failure like any other.
  const running = Promise.resolve().then(() => stepType.run(step.options, context));
  try {
    const outcome = await Promise.race([running.then((detail) => ({ detail: detail ?? undefined })), timedOut]);
    if (outcome === 'timed_out') return finishWith('timed_out', `timed out: reached ${limit}`, progress);
    return finishWith('ok', undefined, mergeDetail(progress, outcome.detail));
  } catch (error) {
    if (controller.signal.aborted) return finishWith('timed_out', `timed out: reached ${limit}`, progress);
    const detail = error instanceof StepFailure ? mergeDetail(progress, error.detail) : progress;
    return finishWith('failed', errorMessage(error), detail);
  } finally {
    clearTimeout(timer);
    // A step that ignored its signal may still settle later; nobody is listening then.
    running.catch(() => undefined);
  }
}

function mergeDetail(a: StepDetail | undefined, b: StepDetail | undefined): StepDetail | undefined {
  return a === undefined && b === undefined ? undefined : { ...a, ...b };
}

/** Callbacks (journal, metrics, status) must never break or hold up the plan. */
function callSafely(log: Logger, callback: () => unknown): void {
  const report = (error: unknown) => log.error({ err: errorMessage(error) }, 'plan callback failed');
  try {
    const result = callback();
    if (result instanceof Promise) result.catch(report);
  } catch (error) {
    report(error);
  }
}
