import { Writable } from 'node:stream';
import { pino } from 'pino';
import { buildEvent } from '../../src/notice/event.js';
import { hostFacts } from '../../src/lib/host.js';
import type { Notice } from '../../src/notice/notice.js';
import type { StepContext } from '../../src/steps/types.js';

export function testNotice(overrides: Partial<Notice> = {}): Notice {
  return {
    id: 'aws-terminate-0123456789abcdef',
    provider: 'aws',
    kind: 'terminate',
    deadline: new Date(Date.now() + 120_000),
    detectedAt: new Date(),
    instance: { id: 'i-0abc123', type: 'g5.xlarge', zone: 'eu-west-1a' },
    raw: { action: 'terminate', time: '2030-01-01T00:00:00Z' },
    ...overrides,
  };
}

export interface TestStepContext {
  context: StepContext;
  /** Every log line the step wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Progress reports, in order. */
  progress: Array<Record<string, unknown>>;
  /** Stops the deadline timer; call in afterEach/finally. */
  dispose(): void;
}

/**
 * A StepContext like the executor's: its signal aborts at `timeoutMs` (or the plan
 * deadline when earlier), and log lines are captured for assertions.
 */
export function testStepContext(
  options: { timeoutMs?: number; planDeadline?: number | null; notice?: Notice; followsStartedAt?: number } = {},
): TestStepContext {
  const notice = options.notice ?? testNotice();
  const planDeadline = options.planDeadline === undefined ? null : options.planDeadline;
  const ownDeadline = Date.now() + (options.timeoutMs ?? 10_000);
  const deadline = planDeadline === null ? ownDeadline : Math.min(ownDeadline, planDeadline);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('step deadline reached')), deadline - Date.now());
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const host = hostFacts();
  const progress: Array<Record<string, unknown>> = [];
  const context: StepContext = {
    stepName: 'test-step',
    notice,
    host,
    log: pino({ level: 'debug' }, sink),
    signal: controller.signal,
    deadline,
    planDeadline,
    followsStartedAt: options.followsStartedAt ?? notice.detectedAt.getTime(),
    event: (type) => buildEvent(type, notice, host, planDeadline),
    finishedSteps: () => [],
    progress: (detail) => progress.push(detail),
  };
  return { context, logs, progress, dispose: () => clearTimeout(timer) };
}
