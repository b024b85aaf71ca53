import { Writable } from 'node:stream';
import { pino } from 'pino';
import { z } from 'zod';
import type { StepConfig } from '../../src/config/types.js';
import type { PreemptdEvent, StepSummary } from '../../src/notice/event.js';
import { hostFacts } from '../../src/lib/host.js';
import { silentLogger } from '../../src/lib/log.js';
import type { Notice, NoticeKind } from '../../src/notice/notice.js';
import { buildPlan, executePlan, fromJournal, type ExecuteDeps, type PlanConfig } from '../../src/plan/executor.js';
import type { AnyStepType, StepContext } from '../../src/steps/types.js';
import { StepFailure } from '../../src/lib/errors.js';

/** What happened, in order: `start:a`, `end:a`... */
let timeline: string[];
let contexts: Map<string, StepContext>;
/** Date.now() as each fake step began and ended its work. */
let clockAt: Map<string, number>;

beforeEach(() => {
  timeline = [];
  contexts = new Map();
  clockAt = new Map();
});

interface FakeOptions {
  ms?: number;
  fail?: string;
  /** Never settles and ignores its signal. */
  hang?: boolean;
}

/** Waits `ms` (honouring its signal), then succeeds or fails. */
const fakeStep: AnyStepType = {
  type: 'fake',
  destructive: false,
  schema: z.any(),
  describe: () => 'fake',
  async run(options: FakeOptions, context: StepContext) {
    contexts.set(context.stepName, context);
    clockAt.set(`start:${context.stepName}`, Date.now());
    timeline.push(`start:${context.stepName}`);
    if (options.hang) return new Promise(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, options.ms ?? 0);
      context.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(context.signal.reason);
      });
    });
    timeline.push(`end:${context.stepName}`);
    clockAt.set(`end:${context.stepName}`, Date.now());
    if (options.fail) throw new StepFailure(options.fail, { tried: true });
    return { waited: options.ms ?? 0 };
  },
};

/** Records what a finish-phase step can see. */
const seen = new Map<string, { steps: StepSummary[]; event: PreemptdEvent }>();
const reportStep: AnyStepType = {
  type: 'report',
  destructive: false,
  schema: z.any(),
  describe: () => 'report',
  phase: (options: { phase: 'finish' | 'both' }) => options.phase,
  async run(_options: unknown, context: StepContext) {
    timeline.push(`start:${context.stepName}`);
    seen.set(context.stepName, {
      steps: context.finishedSteps(),
      event: context.event(context.phase === 'finish' ? 'plan.finished' : 'notice'),
    });
  },
};

const lookup = (type: string) => [fakeStep, reportStep].find((step) => step.type === type);

function step(name: string, options: FakeOptions = {}, more: Partial<StepConfig> = {}): StepConfig {
  return { name, type: 'fake', options, after: [], on: null, timeoutMs: 10_000, ...more };
}

function notice(deadlineInMs: number | null, kind: NoticeKind = 'terminate'): Notice {
  const now = Date.now();
  return {
    id: `aws-${kind}-0000000000000000`,
    provider: 'aws',
    kind,
    deadline: deadlineInMs === null ? null : new Date(now + deadlineInMs),
    detectedAt: new Date(now),
    instance: { id: 'i-0abc' },
    raw: {},
  };
}

function config(steps: StepConfig[], more: Partial<PlanConfig> = {}): PlanConfig {
  return { steps, safetyMarginMs: 0, minimumBudgetMs: 1000, ...more };
}

/** A journal that had `finished` before a restart and keeps what is recorded now. */
function fakeJournal(finished: Map<string, StepSummary>) {
  const recorded: StepSummary[] = [];
  return {
    recorded,
    finishedSteps: () => finished,
    recordStep: async (_noticeId: string, summary: StepSummary) => void recorded.push(summary),
  };
}

function deps(more: Partial<ExecuteDeps> = {}): ExecuteDeps {
  return { log: silentLogger(), host: hostFacts(), lookup, ...more };
}

async function run(steps: StepConfig[], options: { notice?: Notice; config?: Partial<PlanConfig>; deps?: Partial<ExecuteDeps> } = {}) {
  const plan = buildPlan(options.notice ?? notice(120_000), config(steps, options.config), Date.now(), lookup);
  const result = await executePlan(plan, deps(options.deps));
  return { plan, result, byName: new Map(result.steps.map((summary) => [summary.name, summary])) };
}

describe('buildPlan', () => {
  test('orders steps so every step comes after the steps it waits for, keeping config order otherwise', () => {
    const plan = buildPlan(
      notice(120_000),
      config([step('c', {}, { after: ['b'] }), step('a'), step('b', {}, { after: ['a'] }), step('d')]),
      Date.now(),
      lookup,
    );
    expect(plan.steps.map((planned) => planned.name)).toEqual(['a', 'b', 'c', 'd']);
  });

  test('sets the plan deadline to the notice deadline minus the safety margin and bounds each budget by it', () => {
    const now = Date.now();
    const theNotice = notice(120_000);
    const plan = buildPlan(theNotice, config([step('short', {}, { timeoutMs: 5000 }), step('long', {}, { timeoutMs: 600_000 })], { safetyMarginMs: 5000 }), now, lookup);
    expect(plan.planDeadline).toBe(theNotice.deadline!.getTime() - 5000);
    expect(plan.floorBudget).toBe(false);
    expect(plan.steps.map((planned) => planned.budgetMs)).toEqual([5000, theNotice.deadline!.getTime() - 5000 - now]);
  });

  test('a notice without a deadline has no plan deadline and each step keeps its own timeout', () => {
    const plan = buildPlan(notice(null, 'rebalance'), config([step('a', {}, { timeoutMs: 7000 })]), Date.now(), lookup);
    expect(plan.planDeadline).toBeNull();
    expect(plan.steps[0]!.budgetMs).toBe(7000);
  });

  test('a notice whose deadline is already past gets the floor budget from now', () => {
    const now = Date.now();
    const plan = buildPlan(notice(-30_000), config([step('a')], { minimumBudgetMs: 3000, safetyMarginMs: 5000 }), now, lookup);
    expect(plan.floorBudget).toBe(true);
    expect(plan.planDeadline).toBe(now + 3000);
    expect(plan.steps[0]!.budgetMs).toBe(3000);
  });

  test('a hibernate keeps its own deadline (no safety margin, no floor) and puts the quickest ready steps first', () => {
    const now = Date.now();
    const steps = [step('snapshot', {}, { timeoutMs: 60_000 }), step('tell', {}, { timeoutMs: 1000 }), step('drain', {}, { timeoutMs: 5000 }), step('after-tell', {}, { timeoutMs: 500, after: ['snapshot'] })];
    const hibernate = buildPlan(notice(2000, 'hibernate'), config(steps, { minimumBudgetMs: 10_000, safetyMarginMs: 5000 }), now, lookup);
    expect(hibernate.floorBudget).toBe(false);
    expect(hibernate.planDeadline).toBe(hibernate.notice.deadline!.getTime());
    expect(hibernate.steps.map((planned) => planned.name)).toEqual(['tell', 'drain', 'snapshot', 'after-tell']);
    // Every other kind keeps config order.
    const terminate = buildPlan(notice(2000, 'terminate'), config(steps, { minimumBudgetMs: 10_000, safetyMarginMs: 5000 }), now, lookup);
    expect(terminate).toMatchObject({ floorBudget: true, planDeadline: now + 10_000 });
    expect(terminate.steps.map((planned) => planned.name)).toEqual(['snapshot', 'tell', 'drain', 'after-tell']);
  });

  test('leaves out steps whose on: does not include the notice kind and treats waiting on them as satisfied', () => {
    const plan = buildPlan(
      notice(120_000, 'rebalance'),
      config([step('stop', {}, { on: ['terminate'] }), step('tell', {}, { after: ['stop'] })]),
      Date.now(),
      lookup,
    );
    expect(plan.excluded).toEqual(['stop']);
    expect(plan.steps).toHaveLength(1);
    expect(plan.steps[0]).toMatchObject({ name: 'tell', after: [], afterSatisfied: ['stop'] });
  });

  test('names the steps of an after: cycle', () => {
    expect(() =>
      buildPlan(notice(120_000), config([step('a', {}, { after: ['b'] }), step('b', {}, { after: ['a'] })]), Date.now(), lookup),
    ).toThrow('steps a, b wait for each other in a cycle');
  });
});

describe('executePlan', () => {
  test('runs independent steps at once and a dependent step only after all it waits for have finished', async () => {
    const { result } = await run([step('a', { ms: 60 }), step('b', { ms: 30 }), step('c', {}, { after: ['a', 'b'] })]);
    expect(timeline.slice(0, 2).sort()).toEqual(['start:a', 'start:b']);
    expect(timeline.indexOf('start:c')).toBeGreaterThan(timeline.indexOf('end:a'));
    expect(timeline.indexOf('start:c')).toBeGreaterThan(timeline.indexOf('end:b'));
    expect(result.steps.map((summary) => [summary.name, summary.status])).toEqual([
      ['a', 'ok'],
      ['b', 'ok'],
      ['c', 'ok'],
    ]);
    expect(result.steps[0]!.detail).toEqual({ waited: 60 });
  });

  test('tells each step when the latest of the steps it follows started (the notice time without any)', async () => {
    const theNotice = notice(120_000);
    await run([step('a', { ms: 30 }), step('b', {}, { after: ['a'] }), step('c', {}, { after: ['a', 'b'] })], { notice: theNotice });
    expect(contexts.get('a')!.followsStartedAt).toBe(theNotice.detectedAt.getTime());
    // c follows b, which started after a ended: b's start, not a's.
    const follows = contexts.get('c')!.followsStartedAt;
    expect(follows).toBeGreaterThanOrEqual(clockAt.get('end:a')!);
    expect(follows).toBeLessThanOrEqual(clockAt.get('start:b')!);
    expect(contexts.get('b')!.followsStartedAt).toBeLessThanOrEqual(clockAt.get('start:a')!);
  });

  test('runs a step that waits for a step filtered out by on:', async () => {
    const { byName } = await run([step('stop', {}, { on: ['terminate'] }), step('tell', {}, { after: ['stop'] })], {
      notice: notice(120_000, 'rebalance'),
    });
    expect([...byName.keys()]).toEqual(['tell']);
    expect(byName.get('tell')!.status).toBe('ok');
  });

  test('a failing step does not stop the steps after it or beside it', async () => {
    const { byName } = await run([step('a', { fail: 'drain refused' }), step('b', {}, { after: ['a'] }), step('c')]);
    expect(byName.get('a')).toMatchObject({ status: 'failed', error: 'drain refused', detail: { tried: true } });
    expect(byName.get('b')!.status).toBe('ok');
    expect(byName.get('c')!.status).toBe('ok');
  });

  test('a step that throws a plain error fails with its message', async () => {
    const throwing: AnyStepType = { ...fakeStep, type: 'throws', run: () => { throw new Error('boom'); } };
    const plan = buildPlan(notice(120_000), config([{ ...step('x'), type: 'throws' }]), Date.now(), () => throwing);
    const result = await executePlan(plan, deps({ lookup: () => throwing }));
    expect(result.steps[0]).toMatchObject({ status: 'failed', error: 'boom' });
  });

  test('cancels a step at its own timeout and reports it timed_out', async () => {
    const { byName } = await run([step('slow', { ms: 10_000 }, { timeoutMs: 200 })]);
    expect(byName.get('slow')).toMatchObject({ status: 'timed_out', error: 'timed out: reached its 200ms timeout' });
    expect(contexts.get('slow')!.signal.aborted).toBe(true);
  });

  test('settles a step that ignores its signal at the deadline instead of waiting for it', async () => {
    const { byName } = await run([step('stuck', { hang: true }, { timeoutMs: 200 }), step('next', {}, { after: ['stuck'] })]);
    expect(byName.get('stuck')!.status).toBe('timed_out');
    expect(byName.get('next')!.status).toBe('ok');
  });

  test('cancels a running step at the plan deadline and skips steps that could not start before it', async () => {
    const { byName, result } = await run([step('slow', { hang: true }), step('later', {}, { after: ['slow'] })], {
      notice: notice(300),
      config: { minimumBudgetMs: 100 },
    });
    expect(byName.get('slow')).toMatchObject({ status: 'timed_out', error: 'timed out: reached the plan deadline' });
    expect(byName.get('later')).toMatchObject({ status: 'skipped', error: 'plan deadline passed before the step could start' });
    expect(timeline).not.toContain('start:later');
    expect(result.slackMs).toBeLessThanOrEqual(0);
  });

  test('a notice already past its deadline still runs its steps within the floor budget', async () => {
    const { byName, plan } = await run([step('quick', { ms: 10 }), step('slow', { hang: true })], {
      notice: notice(-60_000),
      config: { minimumBudgetMs: 300 },
    });
    expect(plan.floorBudget).toBe(true);
    expect(byName.get('quick')!.status).toBe('ok');
    expect(byName.get('slow')).toMatchObject({ status: 'timed_out', error: 'timed out: reached the plan deadline' });
  });

  test('does not run steps the journal says finished and reports their recorded outcome', async () => {
    const recorded: StepSummary = { name: 'a', type: 'fake', status: 'failed', ms: 12, error: 'earlier' };
    const started: string[] = [];
    const finished: StepSummary[] = [];
    const journal = fakeJournal(new Map([['a', recorded]]));
    const { byName } = await run([step('a'), step('b', {}, { after: ['a'] })], {
      deps: { journal, onStepStarted: (name) => started.push(name), onStepFinished: (summary) => finished.push(summary) },
    });
    expect(timeline).toEqual(['start:b', 'end:b']);
    expect(started).toEqual(['b']);
    expect(byName.get('a')).toEqual({ ...recorded, detail: { fromJournal: true } });
    expect(byName.get('b')!.status).toBe('ok');
    // Observers hear of the journaled run as finished, first; only the new outcome is journaled.
    expect(finished.map((summary) => [summary.name, fromJournal(summary)])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    expect(journal.recorded.map((summary) => summary.name)).toEqual(['b']);
  });

  test('journals every outcome and logs it once, without waiting for a journal that never answers', async () => {
    const lines: Array<{ msg: string; step?: string }> = [];
    const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _encoding, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
    const journal = { ...fakeJournal(new Map()), recordStep: () => new Promise<void>(() => undefined) };
    const { byName } = await run([step('a'), step('b', { fail: 'x' }, { after: ['a'] }), { ...step('tell'), type: 'report', options: { phase: 'both' } }], {
      deps: { log, journal },
    });
    expect([...byName].map(([name, summary]) => `${name}:${summary.status}`)).toEqual(['a:ok', 'b:failed', 'tell:ok', 'tell:finish:ok']);
    const finishedLines = lines.filter((line) => line.msg === 'step finished').map((line) => line.step);
    expect(finishedLines.sort()).toEqual(['a', 'b', 'tell', 'tell:finish']);
  });

  test('finish-phase steps run after every notice step and see their outcomes', async () => {
    const { result } = await run([
      { ...step('summary'), type: 'report', options: { phase: 'finish' } },
      step('a', { ms: 30 }),
      step('b', { fail: 'nope' }),
    ]);
    expect(timeline.at(-1)).toBe('start:summary');
    const view = seen.get('summary')!;
    expect(view.steps.map((summary) => [summary.name, summary.status])).toEqual([
      ['a', 'ok'],
      ['b', 'failed'],
    ]);
    expect(view.event.type).toBe('plan.finished');
    expect(view.event.steps.map((summary) => summary.name)).toEqual(['a', 'b']);
    expect(result.steps.map((summary) => summary.name)).toEqual(['a', 'b', 'summary']);
  });

  test('a both-phase step runs at the notice and again at the finish as <name>:finish', async () => {
    const { result } = await run([{ ...step('tell'), type: 'report', options: { phase: 'both' } }, step('a', { ms: 30 })]);
    expect(result.steps.map((summary) => [summary.name, summary.status])).toEqual([
      ['tell', 'ok'],
      ['a', 'ok'],
      ['tell:finish', 'ok'],
    ]);
    expect(seen.get('tell')!.event.type).toBe('notice');
    expect(seen.get('tell:finish')!.event.type).toBe('plan.finished');
    expect(seen.get('tell:finish')!.steps.map((summary) => summary.name)).toEqual(['tell', 'a']);
  });

  test('reports every start and finish to the callbacks and survives a callback that throws', async () => {
    const started: string[] = [];
    const finished: string[] = [];
    const { byName } = await run([step('a'), step('b', { fail: 'x' })], {
      deps: {
        onStepStarted: (name) => started.push(name),
        onStepFinished: (summary) => {
          finished.push(`${summary.name}:${summary.status}`);
          throw new Error('metrics broke');
        },
      },
    });
    expect(started.sort()).toEqual(['a', 'b']);
    expect(finished.sort()).toEqual(['a:ok', 'b:failed']);
    expect(byName.get('a')!.status).toBe('ok');
  });

  test('does not wait for a callback promise and logs its rejection instead of failing the plan', async () => {
    const logged: string[] = [];
    const log = pino({ level: 'error' }, new Writable({ write: (chunk, _encoding, done) => (logged.push(String(chunk)), done()) }));
    const { byName } = await run([step('a'), step('b', {}, { after: ['a'] })], {
      deps: {
        log,
        onStepFinished: (summary) => (summary.name === 'a' ? new Promise(() => undefined) : Promise.reject(new Error('disk full'))),
      },
    });
    expect(byName.get('b')!.status).toBe('ok');
    await new Promise((resolve) => setImmediate(resolve));
    expect(logged.join('')).toContain('disk full');
  });

  test('reports the timing of the plan', async () => {
    const theNotice = notice(60_000);
    const { result, plan } = await run([step('a', { ms: 20 })], { notice: theNotice });
    expect(result.finishedAt).toBeGreaterThanOrEqual(result.startedAt);
    expect(result.planDeadline).toBe(plan.planDeadline);
    expect(result.slackMs).toBe(plan.planDeadline! - result.finishedAt);
  });

  test('skips a step whose type is unknown', async () => {
    const { byName } = await run([{ ...step('x'), type: 'nosuch' }]);
    expect(byName.get('x')).toMatchObject({ status: 'skipped', error: 'unknown step type nosuch' });
  });
});
