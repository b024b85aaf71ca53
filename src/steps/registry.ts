import type { AnyStepType, StepTypeLookup } from './types.js';
import { execStep } from './exec/step.js';
import { httpStep } from './http/step.js';
import { kubernetesStep } from './kubernetes/step.js';
import { signalStep } from './signal/step.js';
import { snapshotStep } from './snapshot/step.js';
import { waitStep } from './wait/step.js';
import { webhookStep } from './webhook/step.js';

/**
 * Every step type, keyed by the config key that selects it. The config schema and the
 * executor read this registry; adding a step type means adding one line here.
 */
export const STEP_TYPES: readonly AnyStepType[] = [signalStep, httpStep, execStep, webhookStep, waitStep, snapshotStep, kubernetesStep];

export function findStepType(type: string): AnyStepType | undefined {
  return STEP_TYPES.find((stepType) => stepType.type === type);
}

/** Runs the preload of each step type named (once per type); resolves to the types whose preload failed, with why. */
export async function preloadStepTypes(types: Iterable<string>, lookup: StepTypeLookup = findStepType): Promise<{ type: string; reason: unknown }[]> {
  const named = [...new Set(types)].map((type) => ({ type, preload: lookup(type)?.preload }));
  const results = await Promise.allSettled(named.map(({ preload }) => preload?.()));
  return results.flatMap((result, index) => (result.status === 'rejected' ? [{ type: named[index]!.type, reason: result.reason }] : []));
}
