import { Writable } from 'node:stream';
import { pino } from 'pino';
import { compileConfig } from '../helpers/config.js';
import { TestResources } from '../helpers/resources.js';
import { testProviderOptions } from '../helpers/provider-watch.js';
import { scriptedNotice } from '../helpers/scripted-notice.js';
import { ScriptedProvider } from '../helpers/scripted-provider.js';
import { until } from '../helpers/until.js';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import type { Notice } from '../../src/notice/notice.js';
import { AwsProvider } from '../../src/providers/aws/provider.js';
import { AlibabaProvider } from '../../src/providers/alibaba/provider.js';
import { GcpProvider } from '../../src/providers/gcp/provider.js';
import type { Provider } from '../../src/providers/types.js';
import { parseFaultSpec } from '../../src/simulator/fault-spec.js';

/**
 * Issue 13, "Exactly once": a notice's id is stable for the life of its event, whatever
 * moving values the metadata service shows, across flaps and across agent restarts.
 */
const resources = new TestResources('preemptd-identity-');

interface Run {
  daemon: Daemon;
  started: Notice[];
  logs: Array<Record<string, unknown>>;
}

function startDaemon(provider: Provider, stateDir: string, steps: unknown[]): Run {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = compileConfig({ provider: provider.name, stateDir, server: { enabled: false }, steps }, { file: undefined });
  const daemon = createDaemon({ config, log: pino({ level: 'info' }, sink), provider });
  const started: Notice[] = [];
  daemon.on('planStarted', (plan) => started.push(plan.notice));
  void resources.runDaemon(daemon);
  return { daemon, started, logs };
}

const SPOT_PATH = '/latest/meta-data/spot/instance-action';

test('an AWS notice whose time is recomputed on every answer runs one plan, moves its deadline, and not again after a restart', async () => {
  const simulator = await resources.simulator({ provider: 'aws', faults: parseFaultSpec('retime') });
  simulator.trigger({ kind: 'terminate' });
  const receiver = await resources.receiver();
  const stateDir = resources.tempDir();
  const aws = () => new AwsProvider(testProviderOptions(simulator.url, { pollIntervalMs: 100, bootId: 'boot-a' }));
  const steps = [
    { name: 'tell-ops', webhook: { url: receiver.url('/hook'), retries: 0 } },
    // Keeps the plan running across a few re-timed answers.
    { name: 'hold', exec: { command: ['sleep', '2.5'] } },
  ];
  const polls = () => simulator.requests.get(SPOT_PATH) ?? 0;

  const first = startDaemon(aws(), stateDir, steps);
  await until(() => first.logs.some((line) => String(line.msg).startsWith('plan finished')), 15_000);
  const afterPlan = polls();
  await until(() => polls() >= afterPlan + 10);
  expect(first.started).toHaveLength(1);
  expect(receiver.requests).toHaveLength(1);
  const moved = first.logs.filter((line) => String(line.msg).startsWith('the notice time moved'));
  expect(moved.length).toBeGreaterThan(0);
  expect(moved[0]).toMatchObject({ noticeId: first.started[0]!.id });
  await first.daemon.stop();

  const second = startDaemon(aws(), stateDir, steps);
  const restartedAt = polls();
  await until(() => polls() >= restartedAt + 15);
  expect(second.started).toHaveLength(0);
  expect(receiver.requests).toHaveLength(1);
}, 30_000);

test('an Alibaba termination time recomputed on every answer runs one plan', async () => {
  const simulator = await resources.simulator({ provider: 'alibaba', faults: parseFaultSpec('retime') });
  simulator.trigger({ kind: 'terminate' });
  const receiver = await resources.receiver();
  const alibaba = new AlibabaProvider(testProviderOptions(simulator.url, { pollIntervalMs: 100, bootId: 'boot-a' }));
  const run = startDaemon(alibaba, resources.tempDir(), [{ name: 'tell-ops', webhook: { url: receiver.url('/hook'), retries: 0 } }]);
  const polls = () => simulator.requests.get('/latest/meta-data/instance/spot/termination-time') ?? 0;
  await until(() => receiver.requests.length === 1);
  const afterPlan = polls();
  // Past at least two whole seconds, so the time served has moved.
  await until(() => polls() >= afterPlan + 25);
  expect(run.started).toHaveLength(1);
  expect(receiver.requests).toHaveLength(1);
}, 20_000);

test('a GCP maintenance-event that flaps between a value and NONE runs one plan', async () => {
  const simulator = await resources.simulator({ provider: 'gcp' });
  const receiver = await resources.receiver();
  const gcp = new GcpProvider(testProviderOptions(simulator.url, { pollIntervalMs: 50, gcp: { hangTimeoutSeconds: 2 }, bootId: 'boot-a' }));
  const run = startDaemon(gcp, resources.tempDir(), [{ name: 'tell-ops', webhook: { url: receiver.url('/hook'), retries: 0 } }]);
  await until(() => (simulator.requests.get('/computeMetadata/v1/instance/maintenance-event') ?? 0) > 0);
  // Every trigger and clear gives the value a fresh ETag, as a flapping service does.
  for (let flap = 0; flap < 8; flap += 1) {
    simulator.trigger({ kind: 'maintenance' });
    await until(() => run.logs.some((line) => String(line.msg).startsWith('interruption notice')));
    await new Promise((resolve) => setTimeout(resolve, 100));
    simulator.clear();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  simulator.trigger({ kind: 'maintenance' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(run.started).toHaveLength(1);
  expect(receiver.requests).toHaveLength(1);
  expect(run.logs.filter((line) => line.msg === 'notice withdrawn').length).toBeGreaterThan(1);
}, 20_000);

test('at most one plan runs per kind: a second notice of that kind waits for the first plan to end', async () => {
  const provider = new ScriptedProvider();
  const run = startDaemon(provider, resources.tempDir(), [{ name: 'hold', exec: { command: ['sleep', '0.5'] } }]);
  const order: string[] = [];
  run.daemon.on('planStarted', (plan) => order.push(`started ${plan.noticeId}`));
  run.daemon.on('planFinished', (notice) => order.push(`finished ${notice.id}`));
  await until(() => provider.watching);
  provider.notice(scriptedNotice('terminate', 60_000, 'aws-terminate-first'));
  provider.notice(scriptedNotice('terminate', 60_000, 'aws-terminate-second'));
  provider.notice(scriptedNotice('rebalance', null, 'aws-rebalance-other-kind'));
  await until(() => order.length === 6);
  expect(order.filter((entry) => entry.includes('terminate'))).toEqual([
    'started aws-terminate-first',
    'finished aws-terminate-first',
    'started aws-terminate-second',
    'finished aws-terminate-second',
  ]);
  // Another kind does not wait.
  expect(order.indexOf('started aws-rebalance-other-kind')).toBeLessThan(order.indexOf('finished aws-terminate-first'));
  expect(run.logs.some((line) => line.noticeId === 'aws-terminate-second' && line.runningNoticeId === 'aws-terminate-first')).toBe(true);
});
