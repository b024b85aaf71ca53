import type { Config } from '../../src/config/types.js';
import { hostFacts } from '../../src/lib/host.js';
import { silentLogger } from '../../src/lib/log.js';
import { noticeId, type Notice } from '../../src/notice/notice.js';
import { buildPlan, executePlan, type PlanResult } from '../../src/plan/executor.js';
import { findStepType } from '../../src/steps/registry.js';

/**
 * Runs `config`'s plan through the real executor for a synthetic AWS terminate notice due in
 * two minutes. The notice id comes from `marker`, so every round's notice is a distinct one.
 */
export function runPlanForNotice(config: Config, marker: string): Promise<PlanResult> {
  const now = Date.now();
  const notice: Notice = {
    id: noticeId('aws', 'terminate', marker),
    provider: 'aws',
    kind: 'terminate',
    deadline: new Date(now + 120_000),
    detectedAt: new Date(now),
    instance: {},
    raw: {},
  };
  return executePlan(buildPlan(notice, config, now, findStepType), { log: silentLogger(), host: hostFacts(), lookup: findStepType });
}
