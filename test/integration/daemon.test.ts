import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { compileConfig } from '../helpers/config.js';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { resumable } from '../../src/daemon/resumable.js';
import { silentLogger } from '../../src/lib/log.js';
import { noticeId, type Notice } from '../../src/notice/notice.js';
import { httpStep } from '../../src/steps/http/step.js';
import { webhookStep } from '../../src/steps/webhook/step.js';
import { TestResources } from '../helpers/resources.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-daemon-');

function startDaemon(raw: Record<string, unknown>): Daemon {
  const daemon = createDaemon({ config: compileConfig(raw, { file: undefined }), log: silentLogger() });
  void resources.runDaemon(daemon);
  return daemon;
}

test('an AWS spot notice runs the plan once: webhook at once, then the workload is signalled', async () => {
  const metadata = await resources.simulator({ provider: 'aws' });
  const hooks = await resources.receiver({ status: 204 });
  const stateDir = resources.tempDir();
  const record = join(stateDir, 'signals.log');
  const workload = await resources.workloads.start(record);
  const daemon = startDaemon({
    provider: 'aws',
    metadataUrl: metadata.url,
    pollInterval: '100ms',
    stateDir,
    steps: [
      { name: 'tell-ops', webhook: { url: hooks.url('/ops') } },
      { name: 'checkpoint', signal: { pid: workload.pid, signal: 'SIGUSR1' } },
      { name: 'stop', after: ['checkpoint'], signal: { pid: workload.pid, signal: 'SIGTERM', waitExit: '2s' } },
    ],
  });
  const finished: string[] = [];
  daemon.on('planFinished', (notice) => finished.push(notice.id));
  const started: string[] = [];
  daemon.on('stepStarted', (_notice, name) => started.push(name));
  await until(() => daemon.health().lastSuccessAt !== null);

  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  await until(() => finished.length === 1);
  // Many more polls see the same notice; none may run the plan again.
  const pollsBefore = metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0;
  await until(() => (metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0) >= pollsBefore + 5);

  expect(finished).toHaveLength(1);
  expect(hooks.requests).toHaveLength(1);
  const event = JSON.parse(hooks.requests[0]!.body) as { version: number; type: string; notice: { kind: string; provider: string; deadline: string } };
  expect(event).toMatchObject({ version: 1, type: 'notice', notice: { kind: 'terminate', provider: 'aws' } });
  expect(Date.parse(event.notice.deadline)).toBeGreaterThan(Date.now());
  // Both signals arrived; a process given two at nearly the same moment may handle them in
  // either order, so the order they were sent in is what the daemon reports.
  expect(workload.received().sort()).toEqual(['SIGTERM', 'SIGUSR1']);
  expect(started.filter((name) => name !== 'tell-ops')).toEqual(['checkpoint', 'stop']);
});

test('after its first metadata read the daemon preloads each configured step type once, and on reload the new ones', async () => {
  const metadata = await resources.simulator({ provider: 'aws' });
  const webhookPreload = jest.spyOn(webhookStep, 'preload');
  const httpPreload = jest.spyOn(httpStep, 'preload');
  resources.defer(() => {
    webhookPreload.mockRestore();
    httpPreload.mockRestore();
  });
  const raw = { provider: 'aws', metadataUrl: metadata.url, pollInterval: '50ms', stateDir: resources.tempDir() };
  const daemon = startDaemon({ ...raw, steps: [{ name: 'a', webhook: { url: 'http://127.0.0.1:9/a' } }, { name: 'b', webhook: { url: 'http://127.0.0.1:9/b' } }] });
  expect(webhookPreload).not.toHaveBeenCalled();

  await until(() => webhookPreload.mock.calls.length === 1);
  const readsBefore = metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0;
  await until(() => (metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0) >= readsBefore + 3);
  expect(webhookPreload).toHaveBeenCalledTimes(1);
  expect(httpPreload).not.toHaveBeenCalled();

  daemon.reload(compileConfig({ ...raw, steps: [{ name: 'drain', http: { url: 'http://127.0.0.1:9/drain' } }] }, { file: undefined }));
  await until(() => httpPreload.mock.calls.length === 1);
});

test('a GCP preemption is seen through the hanging GET and runs the plan', async () => {
  const metadata = await resources.simulator({ provider: 'gcp' });
  const hooks = await resources.receiver({ status: 204 });
  const daemon = startDaemon({
    provider: 'gcp',
    metadataUrl: metadata.url,
    stateDir: resources.tempDir(),
    steps: [{ name: 'tell-ops', webhook: { url: hooks.url('/ops') } }],
  });
  const kinds: string[] = [];
  daemon.on('notice', (notice) => kinds.push(notice.kind));
  await until(() => daemon.health().lastSuccessAt !== null);

  metadata.trigger({ kind: 'preempt' });
  await hooks.waitFor(1);
  expect(kinds).toEqual(['preempt']);
  const event = JSON.parse(hooks.requests[0]!.body) as { notice: { provider: string; kind: string } };
  expect(event.notice).toMatchObject({ provider: 'gcp', kind: 'preempt' });
});

test('a notice already handled before a restart is not handled again', async () => {
  const metadata = await resources.simulator({ provider: 'aws' });
  const hooks = await resources.receiver({ status: 204 });
  const stateDir = resources.tempDir();
  const config = {
    provider: 'aws',
    metadataUrl: metadata.url,
    pollInterval: '100ms',
    stateDir,
    steps: [{ name: 'tell-ops', webhook: { url: hooks.url('/ops') } }],
  };
  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  const first = createDaemon({ config: compileConfig(config, { file: undefined }), log: silentLogger() });
  const firstRun = first.run();
  await hooks.waitFor(1);
  await until(() => first.health().activeNotices.length === 0);
  await first.stop();
  await firstRun;
  expect(JSON.parse(readFileSync(join(stateDir, 'journal.json'), 'utf8'))).toBeTruthy();

  const second = startDaemon(config);
  const polls = () => metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0;
  await until(() => second.health().lastSuccessAt !== null);
  const seen = polls();
  await until(() => polls() >= seen + 5);
  expect(hooks.requests).toHaveLength(1);
});

test('a failing metadata service does not stop the agent; it detects the notice once the service answers', async () => {
  const metadata = await resources.simulator({ provider: 'aws' });
  const hooks = await resources.receiver({ status: 204 });
  const daemon = startDaemon({
    provider: 'aws',
    metadataUrl: metadata.url,
    pollInterval: '100ms',
    stateDir: resources.tempDir(),
    steps: [{ name: 'tell-ops', webhook: { url: hooks.url('/ops') } }],
  });
  await until(() => daemon.health().lastSuccessAt !== null);
  const address = new URL(metadata.url);
  // From here nothing listens on the metadata port: every request fails until it answers again.
  await metadata.close();
  await until(() => daemon.health().consecutiveErrors >= 2);
  expect(daemon.state).toBe('watching');

  const revived = await resources.simulator({ provider: 'aws', port: Number(address.port) });
  revived.trigger({ kind: 'terminate', leadMs: 120_000 });
  await hooks.waitFor(1, 45_000);
  expect(daemon.health().consecutiveErrors).toBe(0);
}, 60_000);

test('an interrupted plan is resumed only while its deadline lies ahead', () => {
  const notice = (deadline: Date | null): Notice => ({
    id: noticeId('aws', 'terminate', 'x'),
    provider: 'aws',
    kind: deadline ? 'terminate' : 'rebalance',
    deadline,
    detectedAt: new Date(1_000),
    instance: {},
    raw: null,
  });
  expect(resumable(notice(new Date(10_000)), 1_000, 9_000)).toBe(true);
  expect(resumable(notice(new Date(10_000)), 1_000, 10_001)).toBe(false);
  expect(resumable(notice(null), 1_000, 1_000 + 60_000)).toBe(true);
  expect(resumable(notice(null), 1_000, 1_000 + 11 * 60_000)).toBe(false);
});

test('stop() during provider start-up ends run() without ever watching', async () => {
  const states: string[] = [];
  let release: (() => void) | undefined;
  const provider = {
    name: 'aws' as const,
    instanceFacts: async () => ({}),
    watch: () => {
      throw new Error('watch must not start after stop()');
    },
  };
  const daemon = createDaemon({
    config: compileConfig({ provider: 'aws', metadataUrl: 'http://127.0.0.1:9', stateDir: resources.tempDir(), steps: [] }, { file: undefined }),
    log: silentLogger(),
  });
  // Provider creation is where start-up waits on the network (detection); hold it there.
  (daemon as unknown as { createConfiguredProvider: () => Promise<unknown> }).createConfiguredProvider = () =>
    new Promise((resolve) => (release = () => resolve(provider)));
  daemon.on('state', (state) => states.push(state));
  const running = daemon.run();
  await until(() => release !== undefined);
  await daemon.stop();
  release!();
  await running;
  expect(states).toEqual(['stopping', 'stopped']);
});

test('a provider whose watch throws is started again, and one that ignores stop() does not hang the agent', async () => {
  const hooks = await resources.receiver({ status: 204 });
  let watches = 0;
  const provider = {
    name: 'aws' as const,
    instanceFacts: async () => ({}),
    async *watch() {
      watches += 1;
      if (watches === 1) throw new Error('bug in a provider');
      yield {
        type: 'notice' as const,
        notice: { id: noticeId('aws', 'terminate', 'restarted-watch'), provider: 'aws' as const, kind: 'terminate' as const, deadline: new Date(Date.now() + 120_000), detectedAt: new Date(), instance: {}, raw: null },
      };
      await new Promise(() => undefined);
    },
  };
  const daemon = createDaemon({
    config: compileConfig({ stateDir: resources.tempDir(), steps: [{ name: 'tell-ops', webhook: { url: hooks.url('/ops') } }] }, { file: undefined }),
    log: silentLogger(),
    provider,
  });
  const running = daemon.run();
  await hooks.waitFor(1, 15_000);
  expect(watches).toBe(2);
  expect(daemon.state).toBe('watching');
  // The second watch ignores the abort signal; stop() must still end run().
  await daemon.stop();
  await running;
  expect(daemon.state).toBe('stopped');
});
