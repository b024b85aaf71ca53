import type { AnyStepType } from '../step.js';
import { execStep } from './exec.js';
import { httpStep } from './http.js';
import { signalStep } from './signal.js';
import { snapshotStep } from './snapshot.js';
import { webhookStep } from './webhook.js';

/**
 * Every step type, keyed by the config key that selects it. The config schema and the
 * executor read this registry; adding a step type means adding one line here.
 */
export const STEP_TYPES: readonly AnyStepType[] = [signalStep, httpStep, execStep, webhookStep, snapshotStep];

export function findStepType(type: string): AnyStepType | undefined {
  return STEP_TYPES.find((stepType) => stepType.type === type);
}
