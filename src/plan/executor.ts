/** The plan executor: building a plan is pure (build.ts), running it is execute.ts. */
export { buildPlan, type Plan, type PlannedStep, type PlanConfig, type StepPhase } from './build.js';
export { executePlan, finishRunName, type ExecuteDeps, type PlanResult } from './execute.js';
