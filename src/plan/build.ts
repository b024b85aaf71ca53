import type { Config, StepConfig } from '../config/types.js';
import { PreemptdError } from '../lib/errors.js';
import type { Notice } from '../notice/notice.js';
import type { StepTypeLookup } from '../steps/types.js';
import { skipReason } from './kinds.js';

/** When a step runs: with the notice, after every notice-phase step, or both. */
export type StepPhase = 'notice' | 'finish' | 'both';

/** One step of a built plan: plain data, printed by `simulate --dry-run`. */
export interface PlannedStep {
  name: string;
  type: string;
  options: unknown;
  /** Steps this one waits for, limited to steps that are in the plan. */
  after: string[];
  /** `after:` entries left out because that step does not run for this notice kind. */
  afterSatisfied: string[];
  phase: StepPhase;
  timeoutMs: number;
  /** The most time the step can get: the earlier of its timeout and the plan deadline. */
  budgetMs: number;
}

export interface Plan {
  noticeId: string;
  notice: Notice;
  /** Epoch ms when the plan was built. */
  builtAt: number;
  /** Epoch ms no step may run past; null when the notice has no deadline (rebalance). */
  planDeadline: number | null;
  /** True when the notice left less than `minimumBudgetMs` and the floor budget applies. */
  floorBudget: boolean;
  /** Steps in dependency order (config order among steps that do not depend on each other). */
  steps: PlannedStep[];
  /** Steps that do not run for this notice (kinds.ts: `on:`, opt-in kinds, advisory notices). */
  excluded: string[];
  /**
   * What runs, in order: every notice-phase run, then every finish-phase run. The executor,
   * the dry-run schedule and every observer (status, systemd) read these; none works them out.
   */
  runs: Run[];
}

/** One run of a step: a `both` step has two, the second named `<name>:finish`. */
export interface Run {
  name: string;
  step: PlannedStep;
  phase: 'notice' | 'finish';
  /** Runs (by run name) this one waits for, within its own phase. */
  after: string[];
}

/** The name a `both` step's finish run is reported and journaled under. */
export function finishRunName(stepName: string): string {
  return `${stepName}:finish`;
}

export type PlanConfig = Pick<Config, 'steps' | 'safetyMarginMs' | 'minimumBudgetMs'>;

/**
 * Builds the plan for one notice. Pure: the same inputs give the same plan.
 *
 * A step whose `after:` names a step left out (kinds.ts) still runs: that dependency
 * counts as satisfied (the step it waits for will never run for this kind of notice).
 */
export function buildPlan(notice: Notice, config: PlanConfig, now: number, lookup: StepTypeLookup): Plan {
  const applies = (step: StepConfig) => skipReason(step, notice, lookup) === undefined;
  const included = config.steps.filter(applies);
  const includedNames = new Set(included.map((step) => step.name));
  const planDeadline = computePlanDeadline(notice, config, now);
  const remaining = planDeadline.at === null ? Infinity : planDeadline.at - now;

  const steps = dependencyOrder(included, notice.kind === 'hibernate').map((step): PlannedStep => {
    const phase = lookup(step.type)?.phase?.(step.options) ?? 'notice';
    return {
      name: step.name,
      type: step.type,
      options: step.options,
      after: step.after.filter((name) => includedNames.has(name)),
      afterSatisfied: step.after.filter((name) => !includedNames.has(name)),
      phase,
      timeoutMs: step.timeoutMs,
      budgetMs: Math.min(step.timeoutMs, remaining),
    };
  });

  return {
    noticeId: notice.id,
    notice,
    builtAt: now,
    planDeadline: planDeadline.at,
    floorBudget: planDeadline.floor,
    steps,
    excluded: config.steps.filter((step) => !applies(step)).map((step) => step.name),
    runs: planRuns(steps),
  };
}

/**
 * Notice-phase runs wait only for notice-phase runs: a dependency on a finish-only step
 * could never be met before the finish phase, so it counts as satisfied there.
 * Finish-phase runs wait for the finish runs of the steps they name (notice runs are done).
 */
function planRuns(steps: PlannedStep[]): Run[] {
  const phaseOf = new Map(steps.map((step) => [step.name, step.phase]));
  const noticeRuns: Run[] = [];
  const finishRuns: Run[] = [];
  for (const step of steps) {
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
  return [...noticeRuns, ...finishRuns];
}

/**
 * The notice of a running plan moved its time (same event, new deadline): steps that start
 * from now on are held to the new plan deadline and events carry the new notice. Steps
 * already running keep the time they were given when they started.
 */
export function movePlanDeadline(plan: Plan, notice: Notice, config: PlanConfig, now: number): void {
  const planDeadline = computePlanDeadline(notice, config, now);
  plan.notice = notice;
  plan.planDeadline = planDeadline.at;
  plan.floorBudget = planDeadline.floor;
}

/**
 * A hibernate notice's deadline is already the budget the plan gets (aws.hibernateBudget
 * after it was seen: the instance starts hibernating at once), so neither the safety margin
 * nor the minimum budget applies to it: the minimum budget would promise time there is not.
 */
function computePlanDeadline(notice: Notice, config: PlanConfig, now: number): { at: number | null; floor: boolean } {
  if (notice.deadline === null) return { at: null, floor: false };
  if (notice.kind === 'hibernate') return { at: notice.deadline.getTime(), floor: false };
  const wanted = notice.deadline.getTime() - config.safetyMarginMs;
  const floor = now + config.minimumBudgetMs;
  return wanted < floor ? { at: floor, floor: true } : { at: wanted, floor: false };
}

/**
 * Topological order (Kahn), keeping config order among ready steps so plans read like the
 * config; `quickFirst` (a hibernate, with seconds to go) takes the ready step with the
 * shortest timeout first instead: the executor starts runs in plan order, so a quick
 * webhook is under way before a step that spends its first moments on CPU work.
 * The config schema rejects cycles and unknown names; this check only guards against a
 * plan built from an unchecked config.
 */
function dependencyOrder(steps: StepConfig[], quickFirst: boolean): StepConfig[] {
  const names = new Set(steps.map((step) => step.name));
  const placed = new Set<string>();
  const ordered: StepConfig[] = [];
  const candidates = quickFirst ? [...steps].sort((a, b) => a.timeoutMs - b.timeoutMs) : steps;
  while (ordered.length < steps.length) {
    const ready = candidates.find(
      (step) => !placed.has(step.name) && step.after.every((name) => !names.has(name) || placed.has(name)),
    );
    if (!ready) {
      const stuck = steps.filter((step) => !placed.has(step.name)).map((step) => step.name);
      throw new PreemptdError('ERR_CONFIG', `steps ${stuck.join(', ')} wait for each other in a cycle (after:)`);
    }
    placed.add(ready.name);
    ordered.push(ready);
  }
  return ordered;
}
