/**
 * The plan executor: building a plan and its runs is pure (build.ts), running it is
 * execute.ts, and every step outcome is recorded by recorder.ts.
 */
export { buildPlan, finishRunName, movePlanDeadline, type Plan, type PlannedStep, type PlanConfig, type Run, type StepPhase } from './build.js';
export { executePlan, type ExecuteDeps, type PlanResult } from './execute.js';
export { fromJournal, type StepListener } from './recorder.js';
