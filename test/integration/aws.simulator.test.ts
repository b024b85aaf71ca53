import { AwsProvider } from '../../src/providers/aws/provider.js';
import type { ProviderEvent } from '../../src/providers/types.js';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { freePort } from '../helpers/free-port.js';

describe('AWS provider against the simulator', () => {
  let simulator: RunningSimulator | undefined;
  afterEach(async () => {
    await simulator?.close();
    simulator = undefined;
  });

  test('a triggered terminate notice is yielded with its deadline and instance facts', async () => {
    simulator = await startSimulator({ provider: 'aws', instanceId: 'i-0feedfacecafe0001' });
    const recorder = watchRecorder();
    const time = new Date(Date.now() + 120_000);
    time.setUTCMilliseconds(0);
    const watching = collectEvents(new AwsProvider(testProviderOptions(simulator.url)), recorder, 1);
    // Shown only after the provider has seen "nothing" at least once.
    await recorder.readMatching((read) => read.source === 'spot/instance-action');
    simulator.trigger({ kind: 'terminate', time: time.toISOString() });
    const notice = noticeOf((await watching)[0]);
    expect(notice.kind).toBe('terminate');
    expect(notice.deadline?.getTime()).toBe(time.getTime());
    expect(notice.instance).toMatchObject({ id: 'i-0feedfacecafe0001', type: 'g5.xlarge', zone: 'us-east-1a', region: 'us-east-1', lifecycle: 'spot' });
    expect(notice.id).toMatch(/^aws-terminate-[0-9a-f]{16}$/);
    expect(recorder.reads.some((read) => read.source === 'spot/instance-action' && read.status === 404)).toBe(true);
    expect(recorder.reads.every((read) => read.ok)).toBe(true);
    // The token PUT at start (set off by the instance facts) is reported like every request.
    expect(recorder.reads.some((read) => read.source === 'token' && read.status === 200)).toBe(true);
  });

  test('a notice polled many times by fresh providers keeps one id (stable across restarts)', async () => {
    simulator = await startSimulator({ provider: 'aws' });
    simulator.trigger({ kind: 'stop' });
    const ids = new Set<string>();
    for (let restart = 0; restart < 3; restart += 1) {
      const recorder = watchRecorder();
      const events: ProviderEvent[] = [];
      const check = setInterval(() => recorder.reads.filter((read) => read.source === 'spot/instance-action').length >= 20 && recorder.abort(), 5);
      for await (const event of new AwsProvider(testProviderOptions(simulator.url, { clock: new FakeClock() })).watch(recorder.context)) events.push(event);
      clearInterval(check);
      expect(events).toHaveLength(1);
      ids.add(noticeOf(events[0]).id);
    }
    expect(ids.size).toBe(1);
  });

  test('scheduled maintenance from the simulator is a notice, and clearing it withdraws the notice', async () => {
    simulator = await startSimulator({ provider: 'aws' });
    simulator.trigger({ kind: 'maintenance', time: '2026-12-24T18:00:00Z' });
    const sim = simulator;
    const recorder = watchRecorder();
    const events: ProviderEvent[] = [];
    // On a fake clock at a one-minute poll, so the minute-long maintenance interval takes no real time.
    for await (const event of new AwsProvider(testProviderOptions(simulator.url, { pollIntervalMs: 60_000, clock: new FakeClock() })).watch(recorder.context)) {
      events.push(event);
      if (event.type === 'notice') sim.clear();
      else break;
    }
    const notice = noticeOf(events[0]);
    expect(notice.kind).toBe('maintenance');
    expect(notice.deadline?.toISOString()).toBe('2026-12-24T18:00:00.000Z');
    expect(events[1]).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: expect.stringContaining('canceled') });
  });

  test('an Auto Scaling termination (--action autoscaling) is a terminate notice due aws.lifecycleTimeout later; clearing it (InService again) withdraws it', async () => {
    simulator = await startSimulator({ provider: 'aws' });
    const sim = simulator;
    const recorder = watchRecorder();
    const events: ProviderEvent[] = [];
    const options = testProviderOptions(simulator.url, { aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 1000, lifecycleTimeoutMs: 900_000 } });
    const watching = (async () => {
      for await (const event of new AwsProvider(options).watch(recorder.context)) {
        events.push(event);
        if (event.type === 'notice') sim.clear();
        else break;
      }
    })();
    await recorder.readMatching((read) => read.source === 'autoscaling/target-lifecycle-state' && read.status === 200);
    sim.trigger({ kind: 'terminate', action: 'autoscaling' });
    await watching;
    const notice = noticeOf(events[0]);
    expect(notice).toMatchObject({ kind: 'terminate', raw: 'Terminated' });
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBeGreaterThanOrEqual(899_000);
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBeLessThanOrEqual(900_000);
    expect(events[1]).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: 'the Auto Scaling target lifecycle state is InService again' });
    // The spot item never showed anything: this was the group's doing, not a spot interruption.
    expect(recorder.reads.filter((read) => read.source === 'spot/instance-action').every((read) => read.status === 404)).toBe(true);
  });

  test('an instance in no Auto Scaling group (inAutoScalingGroup: false) answers its lifecycle item 404, which the provider then reads once a minute', async () => {
    simulator = await startSimulator({ provider: 'aws', inAutoScalingGroup: false });
    const recorder = watchRecorder();
    const watching = collectEvents(new AwsProvider(testProviderOptions(simulator.url)), recorder, 1);
    await recorder.readMatching((read) => read.source === 'autoscaling/target-lifecycle-state');
    await recorder.readMatching((read) => read.source === 'spot/instance-action' && read.status === 404);
    simulator.trigger({ kind: 'terminate' });
    expect(noticeOf((await watching)[0]).kind).toBe('terminate');
    expect(recorder.reads.filter((read) => read.source === 'autoscaling/target-lifecycle-state').map((read) => read.status)).toEqual([404]);
  });

  test('a hibernate from the simulator comes with no lead time, and the notice is due aws.hibernateBudget after it was seen', async () => {
    simulator = await startSimulator({ provider: 'aws' });
    simulator.trigger({ kind: 'hibernate', leadMs: 120_000 });
    const options = testProviderOptions(simulator.url, { aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 1000, hibernateBudgetMs: 1500 } });
    const notice = noticeOf((await collectEvents(new AwsProvider(options), watchRecorder(), 1))[0]);
    expect(notice.kind).toBe('hibernate');
    expect(Date.parse((notice.raw as { time: string }).time)).toBeLessThanOrEqual(Date.now());
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBeLessThanOrEqual(1500);
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBeGreaterThan(1000);
  });

  test('a metadata service that refuses connections is retried until it comes up, then the notice arrives', async () => {
    const port = await freePort();
    const recorder = watchRecorder();
    // Stopped: the token backoff ends only once the simulator is up.
    const clock = new FakeClock({ running: false });
    const watching = collectEvents(new AwsProvider(testProviderOptions(`http://127.0.0.1:${port}`, { clock })), recorder, 1);
    await recorder.readMatching((read) => read.source === 'spot/instance-action' && read.error?.includes('connection refused') === true);
    simulator = await startSimulator({ provider: 'aws', port });
    simulator.trigger({ kind: 'terminate' });
    clock.advance(5_000);
    expect(noticeOf((await watching)[0]).kind).toBe('terminate');
    expect(recorder.logs.filter((line) => String((line.err as { message?: string } | undefined)?.message).includes('connection refused') && line.source === 'spot/instance-action')).toHaveLength(1);
  });
});
