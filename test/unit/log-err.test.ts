import nock from 'nock';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { StepFailure } from '../../src/lib/errors.js';
import { hostFacts } from '../../src/lib/host.js';
import { createLogger, registerSecret, serializeError } from '../../src/lib/log.js';
import { buildPlan, executePlan } from '../../src/plan/executor.js';
import { GcpProvider } from '../../src/providers/gcp/provider.js';
import type { AnyStepType, StepContext } from '../../src/steps/types.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { nockOnly } from '../helpers/nock-only.js';
import { testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';

/** Every line a log line carrying an error has under `err`: pino's err serializer shape. */

function captured() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination: sink, journal: false }) };
}

const failing: AnyStepType = {
  type: 'failing',
  destructive: false,
  schema: z.any(),
  describe: () => 'failing',
  async run(options: { hang?: boolean; message?: string }, context: StepContext) {
    if (options.hang) return new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason)));
    throw new StepFailure(options.message ?? 'webhook to hooks.test failed: HTTP 500 (1 attempt, not retried)', { status: 500 });
  },
};

async function runSteps(steps: Array<{ name: string; options: object; type?: string; timeoutMs?: number }>) {
  const { lines, log } = captured();
  const now = Date.now();
  const notice = { id: 'aws-terminate-0', provider: 'aws' as const, kind: 'terminate' as const, deadline: new Date(now + 120_000), detectedAt: new Date(now), instance: { id: 'i-0abc' }, raw: {} };
  const config = steps.map((step) => ({ type: 'failing', after: [], on: null, timeoutMs: 10_000, ...step }));
  const lookup = (type: string) => (type === 'failing' ? failing : undefined);
  const plan = buildPlan(notice, { steps: config, safetyMarginMs: 0, minimumBudgetMs: 0 }, now, lookup);
  await executePlan(plan, { log, host: hostFacts(), lookup });
  return lines.filter((line) => line.msg === 'step finished');
}

describe('a failing step', () => {
  test("logs 'step finished' with err: type, message, stack and code", async () => {
    const [line] = await runSteps([{ name: 'tell-ops', options: {} }]);
    expect(line).toMatchObject({
      level: 'warn',
      step: 'tell-ops',
      status: 'failed',
      err: { type: 'StepFailure', message: 'webhook to hooks.test failed: HTTP 500 (1 attempt, not retried)', code: 'ERR_STEP_FAILED' },
      detail: { status: 500 },
    });
    expect((line!.err as { stack: string }).stack).toMatch(/^StepFailure: webhook to hooks\.test failed[^\n]*\n\s+at /);
    expect(line).not.toHaveProperty('error');
  });

  test('a timed-out step carries the timeout as err; a skipped one a reason, not an err', async () => {
    const lines = await runSteps([
      { name: 'slow', options: { hang: true }, timeoutMs: 50 },
      { name: 'gone', type: 'not-installed', options: {} },
    ]);
    const byStep = new Map(lines.map((line) => [line.step, line]));
    expect(byStep.get('slow')).toMatchObject({ status: 'timed_out', err: { type: 'PreemptdError', code: 'ERR_STEP_TIMEOUT', message: 'step slow reached its 50ms timeout' } });
    expect(byStep.get('gone')).toMatchObject({ status: 'skipped', reason: 'unknown step type not-installed' });
    expect(byStep.get('gone')).not.toHaveProperty('err');
  });

  test('a secret in the message is scrubbed from err.message and err.stack', async () => {
    registerSecret('hunter2-log-err-secret');
    const [line] = await runSteps([{ name: 'leaky', options: { message: 'the service said: bad key hunter2-log-err-secret' } }]);
    const err = line!.err as { message: string; stack: string };
    expect(err.message).toBe('the service said: bad key [REDACTED]');
    expect(err.stack).toContain('bad key [REDACTED]');
    expect(JSON.stringify(line)).not.toContain('hunter2');
  });
});

describe('a failing metadata read', () => {
  nockOnly();

  test("logs 'retrying with backoff' with err: type, message, stack and code", async () => {
    nock('http://gce.test').persist().get(/.*/).reply(503, 'Service Unavailable');
    const recorder = watchRecorder();
    const provider = new GcpProvider(testProviderOptions('http://gce.test', { clock: new FakeClock(), bootId: 'boot-1' }));
    const watching = (async () => {
      for await (const _event of provider.watch(recorder.context)) void _event;
    })().catch(() => undefined);
    await recorder.readMatching((read) => !read.ok);
    recorder.abort();
    await watching;
    const line = recorder.logs.find((entry) => String(entry.msg).endsWith('retrying with backoff'));
    expect(line).toMatchObject({ level: 'warn', status: 503, err: { type: 'MetadataError', code: 'ERR_METADATA_HTTP' } });
    const err = line!.err as { message: string; stack: string };
    expect(err.message).toContain('HTTP 503');
    expect(err.stack).toMatch(/^MetadataError: [^\n]*HTTP 503[^\n]*\n\s+at /);
    expect(line).not.toHaveProperty('error');
  });
});

describe('serializeError', () => {
  test('a platform error keeps its errno code; a thrown string becomes a message', () => {
    const platform = Object.assign(new Error('EACCES: permission denied, open /var/lib/preemptd/journal.json'), { code: 'EACCES' });
    expect(serializeError(platform)).toMatchObject({ type: 'Error', code: 'EACCES', message: platform.message });
    expect(serializeError('plain text')).toEqual({ type: 'Error', message: 'plain text' });
  });
});
