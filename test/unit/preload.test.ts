import type { AnyStepType } from '../../src/steps/types.js';
import { preloadStepTypes } from '../../src/steps/registry.js';
import { httpStep } from '../../src/steps/http/step.js';
import { webhookStep } from '../../src/steps/webhook/step.js';
import { preloadGot } from '../../src/lib/load-got.js';

/** A step type that only counts its preloads (the registry's own types load real modules). */
function countingType(type: string, preload?: () => Promise<void>): AnyStepType {
  return { type, schema: undefined as never, destructive: false, run: async () => undefined, describe: () => type, ...(preload ? { preload } : {}) };
}

test('each step type named is preloaded once, types without a preload are passed over, and failures come back with their type', async () => {
  const calls: string[] = [];
  const types = new Map<string, AnyStepType>([
    ['webhook', countingType('webhook', async () => void calls.push('webhook'))],
    ['signal', countingType('signal')],
    ['snapshot', countingType('snapshot', async () => Promise.reject(new Error('module missing')))],
  ]);

  const failed = await preloadStepTypes(['webhook', 'signal', 'webhook', 'snapshot', 'unknown'], (type) => types.get(type));

  expect(calls).toEqual(['webhook']);
  expect(failed).toEqual([{ type: 'snapshot', reason: new Error('module missing') }]);
});

test('the webhook and http steps preload got, which they import on first use', () => {
  expect(webhookStep.preload).toBe(preloadGot);
  expect(httpStep.preload).toBe(preloadGot);
});
