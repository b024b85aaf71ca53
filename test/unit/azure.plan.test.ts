import { z } from 'zod';
import type { StepConfig } from '../../src/config/types.js';
import type { Notice, NoticeKind } from '../../src/notice/notice.js';
import { buildPlan } from '../../src/plan/build.js';
import type { AnyStepType } from '../../src/steps/types.js';

const noop: AnyStepType = { type: 'noop', schema: z.any(), destructive: false, describe: () => 'noop', run: async () => undefined };

function step(name: string, on: NoticeKind[] | null, after: string[] = []): StepConfig {
  return { name, type: 'noop', options: {}, after, on, timeoutMs: 10_000 };
}

function azureNotice(kind: NoticeKind): Notice {
  const now = Date.now();
  return { id: `azure-${kind}-0000000000000000`, provider: 'azure', kind, deadline: new Date(now + 900_000), detectedAt: new Date(now), instance: {}, raw: {} };
}

const steps = [step('tell-ops', null), step('pause-trainer', ['freeze']), step('stop-trainer', ['preempt', 'terminate'], ['tell-ops'])];
const plan = (kind: NoticeKind) => buildPlan(azureNotice(kind), { steps, safetyMarginMs: 0, minimumBudgetMs: 1000 }, Date.now(), () => noop);

describe('Azure Freeze in the plan filter', () => {
  test('a freeze notice runs only the steps whose on: lists freeze', () => {
    const frozen = plan('freeze');
    expect(frozen.steps.map((planned) => planned.name)).toEqual(['pause-trainer']);
    expect(frozen.excluded).toEqual(['tell-ops', 'stop-trainer']);
  });

  test('a step without on: still runs for every other Azure kind', () => {
    for (const kind of ['preempt', 'terminate', 'reboot', 'redeploy'] as const) {
      expect(plan(kind).steps.map((planned) => planned.name)).toContain('tell-ops');
      expect(plan(kind).excluded).toContain('pause-trainer');
    }
  });
});
