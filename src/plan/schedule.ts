import type { StepTypeLookup } from '../steps/types.js';
import type { Plan, Run } from './build.js';

/** One run of a step in a dry run: when it would start at the latest, and what time it gets. */
export interface ScheduledRun {
  name: string;
  type: string;
  phase: Run['phase'];
  after: string[];
  /** Latest start, ms after the plan starts, if every step before it used its whole budget. */
  latestStartMs: number;
  /** The time it gets when it starts then: its timeout, cut by the plan deadline. */
  budgetMs: number;
  /** True when the plan deadline may pass before it can start (the executor then skips it). */
  mayNotStart: boolean;
  does: string;
}

/**
 * The worst-case timetable of a plan, following the executor's rules: a run starts when the
 * runs it waits for have ended, finish-phase runs after every notice-phase run, and no run
 * goes past the plan deadline.
 */
export function schedulePlan(plan: Plan, lookup: StepTypeLookup): ScheduledRun[] {
  const remaining = plan.planDeadline === null ? Infinity : plan.planDeadline - plan.builtAt;
  const endOf = new Map<string, number>();
  const schedule = (runs: Run[], phaseStart: number) =>
    runs.map((run): ScheduledRun => {
      const latestStartMs = Math.max(phaseStart, ...run.after.map((name) => endOf.get(name) ?? phaseStart));
      const budgetMs = Math.max(0, Math.min(run.step.timeoutMs, remaining - latestStartMs));
      endOf.set(run.name, latestStartMs + budgetMs);
      const stepType = lookup(run.step.type);
      return {
        name: run.name,
        type: run.step.type,
        phase: run.phase,
        after: run.after,
        latestStartMs,
        budgetMs,
        mayNotStart: latestStartMs >= remaining,
        does: stepType ? stepType.describe(run.step.options) : `unknown step type ${run.step.type}: would be skipped`,
      };
    });
  const noticePhase = schedule(plan.runs.filter((run) => run.phase === 'notice'), 0);
  const finishStart = Math.max(0, ...noticePhase.map((run) => endOf.get(run.name)!));
  return [...noticePhase, ...schedule(plan.runs.filter((run) => run.phase === 'finish'), finishStart)];
}
