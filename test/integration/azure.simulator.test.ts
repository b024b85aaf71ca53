import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../helpers/config.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { MetadataClient } from '../../src/providers/metadata/client.js';
import { AzureProvider } from '../../src/providers/azure/provider.js';
import { SCHEDULED_EVENTS_PATH } from '../../src/providers/azure/scheduled-events.js';
import { detectProvider } from '../../src/providers/detect.js';
import { silentLogger } from '../../src/lib/log.js';
import type { SimulatedAzure } from '../../src/simulator/azure.js';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';
import { noticeId, type NoticeKind } from '../../src/notice/notice.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';

const VM = 'gpu-trainer_3';
// Under Azure's 5 requests per second, as a real agent at 1 s is.
const POLL_MS = 400;

describe('Azure simulator and provider', () => {
  let simulator: RunningSimulator;
  let client: MetadataClient;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'azure', instanceName: VM, instanceId: 'vm-0001' });
    client = new MetadataClient(simulator.url);
  });
  afterEach(async () => {
    client.close();
    await simulator.close();
  });

  const cloud = () => simulator.cloud as SimulatedAzure;
  const getEvents = async (headers: Record<string, string> = { Metadata: 'true' }) => {
    const response = await client.request({ path: SCHEDULED_EVENTS_PATH, headers, timeoutMs: 1000 });
    return { status: response.status, body: response.body ? (JSON.parse(response.body) as Record<string, any>) : undefined };
  };
  const provider = () => new AzureProvider(testProviderOptions(simulator.url, { pollIntervalMs: POLL_MS, azure: { firstCallTimeoutMs: 2000 } }));

  test('the simulator answers 400 without Metadata: true, with X-Forwarded-For, and without api-version', async () => {
    expect((await getEvents({})).status).toBe(400);
    expect((await getEvents({ Metadata: 'false' })).body?.error).toMatch(/metadata header/);
    expect((await getEvents({ Metadata: 'true', 'X-Forwarded-For': '10.0.0.9' })).status).toBe(400);
    const noVersion = await client.request({ path: '/metadata/scheduledevents', headers: { Metadata: 'true' }, timeoutMs: 1000 });
    expect(noVersion.status).toBe(400);
    expect((await getEvents()).status).toBe(200);
  });

  test('the simulator answers 429 past 5 requests within one second from one client', async () => {
    const statuses: number[] = [];
    for (let request = 0; request < 7; request += 1) statuses.push((await getEvents()).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toContain(429);
  });

  test('a trigger shows a Scheduled event for this VM, NotBefore in RFC 1123, and each change bumps DocumentIncarnation', async () => {
    const first = (await getEvents()).body!;
    expect(first.Events).toEqual([]);
    const before = Date.now();
    simulator.trigger({ kind: 'redeploy', leadMs: 60_000 });
    const shown = (await getEvents()).body!;
    expect(shown.DocumentIncarnation).toBeGreaterThan(first.DocumentIncarnation);
    const [event] = shown.Events;
    expect(event).toMatchObject({ EventType: 'Redeploy', EventStatus: 'Scheduled', Resources: [VM], ResourceType: 'VirtualMachine' });
    expect(event.NotBefore).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Math.abs(Date.parse(event.NotBefore) - (before + 60_000))).toBeLessThan(2000);
    simulator.trigger({ kind: 'preempt', resources: ['someone-else_1'] });
    expect((await getEvents()).body!.Events[0].Resources).toEqual(['someone-else_1']);
    simulator.clear();
    const cleared = (await getEvents()).body!;
    expect(cleared.Events).toEqual([]);
    expect(cleared.DocumentIncarnation).toBeGreaterThan(shown.DocumentIncarnation + 1);
    expect(() => simulator.trigger({ kind: 'hibernate' })).toThrow('the azure simulator cannot show a hibernate notice; it can show preempt, terminate, reboot, redeploy, freeze');
  });

  test('the provider yields a notice with the kind, NotBefore deadline and an EventId-based id for each event type, withdrawing replaced ones', async () => {
    const watched = provider();
    const recorder = watchRecorder();
    const kinds: NoticeKind[] = ['preempt', 'terminate', 'reboot', 'redeploy', 'freeze'];
    const deadline = new Date(Date.now() + 90_000);
    deadline.setUTCMilliseconds(0);
    const events = [];
    const iterator = watched.watch(recorder.context)[Symbol.asyncIterator]();
    try {
      for (const kind of kinds) {
        simulator.trigger({ kind, time: deadline.toISOString() });
        // Each trigger replaces the previous event: its notice comes, then the old one's withdrawal.
        const expected = kind === 'preempt' ? 1 : 2;
        for (let index = 0; index < expected; index += 1) events.push((await iterator.next()).value);
      }
    } finally {
      recorder.abort();
      await iterator.return?.();
    }
    const notices = events.filter((event) => event.type === 'notice').map(noticeOf);
    expect(notices.map((notice) => notice.kind)).toEqual(kinds);
    for (const notice of notices) {
      expect(notice.deadline?.getTime()).toBe(deadline.getTime());
      expect(notice.id).toBe(noticeId('azure', notice.kind, (notice.raw as { EventId: string }).EventId));
      expect(notice.instance).toMatchObject({ name: VM, id: 'vm-0001', lifecycle: 'spot' });
    }
    const withdrawn = events.filter((event) => event.type === 'withdrawn').map((event) => event.noticeId);
    expect(withdrawn).toEqual(notices.slice(0, -1).map((notice) => notice.id));
    expect(recorder.reads.every((read) => read.ok)).toBe(true);
  });

  test("the provider ignores an event for another VM and yields this VM's next one", async () => {
    const recorder = watchRecorder();
    simulator.trigger({ kind: 'preempt', resources: ['neighbour_7'] });
    // This VM's event comes once the provider has read the neighbour's.
    const neighbourRead = recorder.readMatching((read) => read.source === 'scheduledevents').then(() => simulator.trigger({ kind: 'terminate' }));
    const [[found]] = await Promise.all([collectEvents(provider(), recorder, 1), neighbourRead]);
    expect(noticeOf(found).kind).toBe('terminate');
    expect(recorder.reads.filter((read) => read.source === 'scheduledevents').length).toBeGreaterThanOrEqual(2);
  });

  test('acknowledge sends StartRequests the simulator receives; the event moves to Started and is not yielded again', async () => {
    const watched = provider();
    const recorder = watchRecorder();
    simulator.trigger({ kind: 'reboot' });
    const iterator = watched.watch(recorder.context)[Symbol.asyncIterator]();
    try {
      const notice = noticeOf((await iterator.next()).value);
      await watched.acknowledge(notice, new AbortController().signal);
      const eventId = (notice.raw as { EventId: string }).EventId;
      expect(cloud().startRequests).toEqual([{ EventId: eventId }]);
      // Read from the simulator itself: an extra HTTP read could meet the 5/s limit the agent is using.
      const [event] = cloud().document().Events;
      expect(event).toMatchObject({ EventId: eventId, EventStatus: 'Started', NotBefore: '' });
      // The Started document is read at least once more: nothing new is yielded, and clearing withdraws.
      const readsAfterAck = recorder.reads.length;
      const cleared = recorder.readMatching(() => recorder.reads.length > readsAfterAck + 1).then(() => simulator.clear());
      const [{ value: next }] = await Promise.all([iterator.next(), cleared]);
      expect(next).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: expect.any(String) });
      expect(recorder.reads.length).toBeGreaterThan(readsAfterAck + 1);
    } finally {
      recorder.abort();
      await iterator.return?.();
    }
  });

  test('without DMI files, the probes recognise the Azure simulator and no other cloud', async () => {
    const detection = await detectProvider({ dmiDir: '/nonexistent/preemptd-dmi', probe: true, metadataUrl: simulator.url, log: silentLogger() });
    expect(detection).toEqual({ provider: 'azure', how: expect.stringContaining('compute.name') });
  });

  test('with azure.ackWhenDone the daemon acknowledges the event once its plan has finished', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'preemptd-azure-ack-'));
    const config = compileConfig({ provider: 'azure', metadataUrl: simulator.url, pollInterval: `${POLL_MS}ms`, stateDir, azure: { ackWhenDone: true } });
    const daemon = createDaemon({ config, log: silentLogger() });
    const running = daemon.run();
    try {
      simulator.trigger({ kind: 'redeploy' });
      const eventId = cloud().document().Events[0]!.EventId;
      const finished = new Promise((resolve) => daemon.once('planFinished', resolve));
      await finished;
      // The acknowledgement follows the plan; up to 10 s for a loaded machine.
      for (let wait = 0; cloud().startRequests.length === 0 && wait < 500; wait += 1) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(cloud().startRequests).toEqual([{ EventId: eventId }]);
      expect(cloud().document().Events[0]).toMatchObject({ EventId: eventId, EventStatus: 'Started' });
    } finally {
      await daemon.stop();
      await running;
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  test('the simulator refuses a StartRequests body of the wrong shape', async () => {
    const response = await client.request({ method: 'POST', path: SCHEDULED_EVENTS_PATH, headers: { Metadata: 'true' }, body: '{"StartRequests":"all"}', timeoutMs: 1000 });
    expect(response.status).toBe(400);
    expect(cloud().startRequests).toEqual([]);
  });
});
