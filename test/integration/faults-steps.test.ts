import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { compileConfig } from '../helpers/config.js';
import type { PreemptdEvent, StepSummary } from '../../src/notice/event.js';
import { hostFacts } from '../../src/lib/host.js';
import { buildPlan, executePlan, type PlanResult } from '../../src/plan/executor.js';
import { findStepType } from '../../src/steps/registry.js';
import { isRunning } from '../../src/steps/signal/proc.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { S3_CREDENTIALS, startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { testNotice } from '../helpers/step-context.js';
import { freePort } from '../helpers/free-port.js';
import { Workloads } from '../helpers/workload.js';

/**
 * Step-side faults, all in one plan so each is seen beside the others: a webhook receiver
 * that is down, one slower than the step's timeout, one answering 500 then 200; drain
 * endpoints refusing connections; a workload that ignores SIGTERM; a snapshot destination
 * failing mid-way. The healthy steps must finish on time, and the summary webhook (sent
 * after the plan) must tell exactly what happened.
 */

describe('a plan whose steps meet failing endpoints, stubborn processes and a broken destination', () => {
  const savedEnv = { ...process.env };
  const workloads = new Workloads();
  let dir: string;
  let flaky: Receiver;
  let slow: Receiver;
  let receiver: Receiver;
  let s3: S3TestServer;
  let result: PlanResult;
  let summary: PreemptdEvent;
  let finishOrder: string[];
  let stubbornPid: number;
  let stubbornSignals: () => string[];
  const byName = (steps: StepSummary[], name: string) => steps.find((step) => step.name === name)!;

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    dir = mkdtempSync(join(tmpdir(), 'preemptd-step-faults-'));
    // Two small files, then one large enough for several parts; every part after the second fails.
    writeFileSync(join(dir, 'a.txt'), 'alpha');
    writeFileSync(join(dir, 'b.txt'), 'beta');
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(20 * 1024 * 1024, 7));
    s3 = await startS3Server({ failPart: (part) => part.partNumber > 2 });
    receiver = await startReceiver();
    flaky = await startReceiver({ status: 500 }, { status: 200 });
    slow = await startReceiver({ status: 200, delayMs: 10_000 });
    const down = await freePort();
    const stubborn = await workloads.start(join(dir, 'signals'), ['--ignore', 'SIGTERM']);
    stubbornPid = stubborn.pid;
    stubbornSignals = stubborn.received;
    const hook = (url: string, extra: Record<string, unknown> = {}) => ({ url, retries: 2, backoff: { base: '50ms', max: '100ms' }, ...extra });
    const config = compileConfig({
      steps: [
        { name: 'hook-down', webhook: hook(`http://127.0.0.1:${down}/hook`) },
        { name: 'hook-flaky', webhook: hook(flaky.url('/flaky')) },
        { name: 'hook-slow', timeout: '1500ms', webhook: hook(slow.url('/slow'), { timeout: '10s' }) },
        { name: 'drain-refused', http: { url: `http://127.0.0.1:${down}/drain`, method: 'POST', onRefused: 'fail' } },
        { name: 'drain-gone-ok', http: { url: `http://127.0.0.1:${down}/drain`, method: 'POST' } },
        { name: 'stop-stubborn', signal: { pid: stubbornPid, signal: 'SIGTERM', killAfter: '500ms' } },
        { name: 'save-state', timeout: '20s', snapshot: { paths: [join(dir, '*.txt'), join(dir, 'big.bin')], to: `s3://${s3.bucket}/ckpt/`, endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', partSize: '5MiB' } },
        { name: 'checkpoint', exec: { command: ['true'] } },
        { name: 'summary', webhook: hook(receiver.url('/summary'), { send: 'finish' }) },
      ],
    });
    const notice = testNotice({ deadline: new Date(Date.now() + 30_000) });
    const plan = buildPlan(notice, config, Date.now(), findStepType);
    finishOrder = [];
    result = await executePlan(plan, { log: pino({ level: 'silent' }), host: hostFacts(), lookup: findStepType, onStepFinished: (step) => void finishOrder.push(step.name) });
    const summaryRequest = receiver.requests.find((request) => request.path === '/summary');
    summary = JSON.parse(summaryRequest!.body) as PreemptdEvent;
  }, 60_000);

  afterAll(async () => {
    workloads.killAll();
    process.env = { ...savedEnv };
    await receiver?.close();
    await flaky?.close();
    await slow?.close();
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the healthy steps finish before the failing ones give up, and the plan ends before its deadline', () => {
    expect(byName(result.steps, 'checkpoint').status).toBe('ok');
    expect(byName(result.steps, 'hook-flaky').status).toBe('ok');
    expect(finishOrder.indexOf('checkpoint')).toBeLessThan(finishOrder.indexOf('hook-slow'));
    expect(finishOrder.indexOf('hook-flaky')).toBeLessThan(finishOrder.indexOf('hook-slow'));
    expect(result.slackMs).toBeGreaterThan(0);
  });

  test('the summary reports every step with the status it really ended with', () => {
    const statuses = Object.fromEntries(summary.steps.map((step) => [step.name, step.status]));
    expect(statuses).toEqual({
      'hook-down': 'failed',
      'hook-flaky': 'ok',
      'hook-slow': 'timed_out',
      'drain-refused': 'failed',
      'drain-gone-ok': 'ok',
      'stop-stubborn': 'ok',
      'save-state': 'failed',
      checkpoint: 'ok',
    });
    expect(summary.steps).toEqual(result.steps.filter((step) => step.name !== 'summary').map((step) => expect.objectContaining({ name: step.name, status: step.status })));
  });

  test('each failure is described as what happened', () => {
    const step = (name: string) => byName(summary.steps, name);
    expect(step('hook-down').error).toMatch(/refused/i);
    expect(step('hook-flaky').detail).toMatchObject({ attempts: 2, status: 200 });
    expect(step('hook-slow').error).toMatch(/timed out: reached its 1500ms timeout/);
    expect(step('drain-refused').error).toMatch(/connection refused/);
    expect(step('drain-gone-ok').detail).toMatchObject({ outcome: expect.stringMatching(/refused/) });
    expect(step('stop-stubborn').detail).toMatchObject({ signal: 'SIGTERM', processes: [{ pid: stubbornPid, outcome: 'killed' }] });
    expect(step('save-state').error).toMatch(/incomplete: stored 2 files, 9 of 20971529 bytes; 1 skipped \(first: .*big\.bin: upload failed/);
    expect(step('save-state').detail).toMatchObject({ complete: false, files: 2, skipped: 1 });
  });

  test('the process that ignored SIGTERM got it, and is really gone after the SIGKILL', async () => {
    expect(stubbornSignals()).toEqual(['SIGTERM']);
    expect(await isRunning(stubbornPid)).toBe(false);
  });
});
