import nock from 'nock';
import { silentLogger } from '../../src/lib/log.js';
import type { Notice } from '../../src/notice/notice.js';
import { AzureProvider } from '../../src/providers/azure/provider.js';
import { FIRST_CALL_MESSAGE, ScheduledEventsTracker, eventDeadline, parseAzureInstance, parseScheduledEvents } from '../../src/providers/azure/scheduled-events.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { noReply } from '../helpers/no-reply.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';
import { nockOnly } from '../helpers/nock-only.js';

// A name that never resolves: with net connect disabled nothing can leave the machine.
const BASE = 'http://azure-imds.test';
const EVENTS = { path: '/metadata/scheduledevents', query: { 'api-version': '2020-07-01' } };
const INSTANCE = { path: '/metadata/instance', query: { 'api-version': '2021-02-01' } };
const VM = 'trainer-vm_0';

function instanceDocument(name = VM) {
  return { compute: { name, vmId: 'vm-id-1', vmSize: 'Standard_NC6s_v3', location: 'westeurope', zone: '', priority: 'Spot', osProfile: { computerName: 'trainer' } } };
}

function event(overrides: Record<string, unknown> = {}) {
  return {
    EventId: 'C7061BAC-AFDC-4513-B24B-AA5F13A16123',
    EventStatus: 'Scheduled',
    EventType: 'Preempt',
    ResourceType: 'VirtualMachine',
    Resources: [VM],
    NotBefore: 'Mon, 11 Apr 2033 22:26:58 GMT',
    Description: 'Spot eviction',
    EventSource: 'Platform',
    DurationInSeconds: -1,
    ...overrides,
  };
}

function azure() {
  return nock(BASE).matchHeader('metadata', 'true');
}

/** Persistent: a slow machine may time out a read and ask again. */
function serveInstance() {
  return azure().persist().get(INSTANCE.path).query(INSTANCE.query).reply(200, instanceDocument());
}

/** Serves each document once, in order, then the last one for good. */
function serveDocuments(...documents: Array<[number, unknown]>) {
  const scope = azure();
  for (const [status, body] of documents) scope.get(EVENTS.path).query(EVENTS.query).reply(status, body as nock.Body);
  const last = documents.at(-1)!;
  scope.get(EVENTS.path).query(EVENTS.query).times(500).reply(last[0], last[1] as nock.Body);
  return scope;
}

const doc = (incarnation: number, ...events: unknown[]) => ({ DocumentIncarnation: incarnation, Events: events });

/** A provider on a fake clock: its intervals and backoffs take no real time. */
function provider(overrides: Parameters<typeof testProviderOptions>[1] = {}) {
  return new AzureProvider(testProviderOptions(BASE, { azure: { firstCallTimeoutMs: 2000 }, clock: new FakeClock(), ...overrides }));
}

nockOnly();

describe('Azure Scheduled Events provider (protocol edge cases)', () => {
  test('a Preempt event for this VM becomes a preempt notice with NotBefore as its deadline and a stable id', async () => {
    serveInstance();
    serveDocuments([200, doc(1)], [200, doc(2, event())]);
    const recorder = watchRecorder();
    const notice = noticeOf((await collectEvents(provider(), recorder, 1))[0]);
    expect(notice).toMatchObject({ provider: 'azure', kind: 'preempt', raw: event() });
    expect(notice.deadline?.toISOString()).toBe('2033-04-11T22:26:58.000Z');
    expect(notice.id).toMatch(/^azure-preempt-[0-9a-f]{16}$/);
    expect(notice.instance).toMatchObject({ name: VM, id: 'vm-id-1', type: 'Standard_NC6s_v3', region: 'westeurope', lifecycle: 'spot' });
    // The same event seen by a fresh agent gets the same id.
    nock.cleanAll();
    serveInstance();
    serveDocuments([200, doc(7, event({ EventStatus: 'Started', NotBefore: '' }))]);
    const again = noticeOf((await collectEvents(provider(), watchRecorder(), 1))[0]);
    expect(again.id).toBe(notice.id);
  });

  test('a 400 (what Azure answers without the Metadata header or with X-Forwarded-For) is reported with the proxy hint and retried', async () => {
    serveInstance();
    serveDocuments([400, { error: 'Bad request. Required metadata header not specified' }], [200, doc(1, event())]);
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    const refused = recorder.reads.find((read) => read.status === 400);
    expect(refused).toMatchObject({ source: 'scheduledevents', ok: false });
    expect(refused?.error).toMatch(/X-Forwarded-For/);
    expect(recorder.logs.some((line) => line.level === 'warn' && String(line.msg).includes('HTTP 400'))).toBe(true);
  });

  test('a request without the Metadata header is never sent', async () => {
    // Only requests carrying `Metadata: true` match; any other would fail with "no match".
    serveInstance();
    serveDocuments([200, doc(1, event())]);
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    expect(recorder.reads.every((read) => read.ok)).toBe(true);
  });

  test('after 429 the provider backs off instead of polling at its interval, then yields the notice', async () => {
    serveInstance();
    serveDocuments([429, { error: 'Too many requests' }], [429, { error: 'Too many requests' }], [200, doc(1, event())]);
    const clock = new FakeClock();
    const recorder = watchRecorder();
    const [found] = await collectEvents(provider({ clock }), recorder, 1);
    expect(noticeOf(found).kind).toBe('preempt');
    expect(recorder.reads.filter((read) => read.status === 429)).toHaveLength(2);
    // Poll interval is 20 ms; the backoff waits 250 to 500 ms, then 500 to 1000 ms.
    expect(clock.sleeps).toHaveLength(2);
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(250);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(500);
    expect(clock.sleeps[1]).toBeGreaterThanOrEqual(500);
    expect(clock.sleeps[1]).toBeLessThanOrEqual(1000);
    // One warning for the run of identical 429s, not one per request.
    expect(recorder.logs.filter((line) => String(line.msg).includes('HTTP 429'))).toHaveLength(1);
  });

  test('410 and 500 answers are retried until the document arrives', async () => {
    serveInstance();
    serveDocuments([410, ''], [500, ''], [200, doc(3, event())]);
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    expect(recorder.reads.filter((read) => !read.ok).map((read) => read.status)).toEqual([410, 500]);
  });

  test('an empty NotBefore on a Scheduled event gives the minimum notice for its type', async () => {
    serveInstance();
    serveDocuments([200, doc(1, event({ NotBefore: '' }), event({ EventId: 'R-1', EventType: 'Reboot', NotBefore: '' }))]);
    const events = await collectEvents(provider(), watchRecorder(), 2);
    const [preempt, reboot] = events.map(noticeOf) as [Notice, Notice];
    expect(preempt.deadline!.getTime() - preempt.detectedAt.getTime()).toBe(30_000);
    expect(reboot.kind).toBe('reboot');
    expect(reboot.deadline!.getTime() - reboot.detectedAt.getTime()).toBe(15 * 60_000);
  });

  test('a Started event with an empty NotBefore is due now, leaving the floor budget to the executor', async () => {
    serveInstance();
    serveDocuments([200, doc(1, event({ EventStatus: 'Started', NotBefore: '', EventType: 'Freeze' }))]);
    const notice = noticeOf((await collectEvents(provider(), watchRecorder(), 1))[0]);
    expect(notice.kind).toBe('freeze');
    expect(notice.deadline?.getTime()).toBe(notice.detectedAt.getTime());
  });

  test("events listing only other VMs' names are ignored; this VM's name matches in any case", async () => {
    serveInstance();
    serveDocuments(
      [200, doc(1, event({ EventId: 'OTHER', Resources: ['neighbour-vm_1'] }))],
      [200, doc(2, event({ EventId: 'OTHER', Resources: ['neighbour-vm_1'] }), event({ EventId: 'MINE', EventType: 'Redeploy', Resources: ['neighbour-vm_1', VM.toUpperCase()] }))],
    );
    const events = await collectEvents(provider(), watchRecorder(), 1);
    expect(noticeOf(events[0]).raw).toMatchObject({ EventId: 'MINE' });
    expect(noticeOf(events[0]).kind).toBe('redeploy');
  });

  test('an event that leaves the document is withdrawn under the id it was yielded with', async () => {
    serveInstance();
    serveDocuments([200, doc(1, event({ EventType: 'Reboot' }))], [200, doc(2)]);
    const [shown, withdrawn] = await collectEvents(provider(), watchRecorder(), 2);
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: noticeOf(shown).id, reason: expect.stringContaining('C7061BAC') });
  });

  test('a slow first call gets firstCallTimeoutMs and the expected-wait message; later calls get requestTimeoutMs', async () => {
    serveInstance();
    const scope = azure();
    scope.get(EVENTS.path).query(EVENTS.query).delay(400).reply(200, doc(1));
    scope.get(EVENTS.path).query(EVENTS.query).reply(noReply);
    scope.get(EVENTS.path).query(EVENTS.query).times(50).reply(200, doc(2, event()));
    const recorder = watchRecorder();
    // The first call's limit lies far past its 400 ms answer, so a loaded machine cannot turn it into a timeout.
    const watched = provider({ requestTimeoutMs: 150, azure: { firstCallTimeoutMs: 20_000 } });
    await collectEvents(watched, recorder, 1);
    const eventReads = recorder.reads.filter((read) => read.source === 'scheduledevents');
    expect(eventReads[0]).toMatchObject({ ok: true, status: 200 });
    expect(eventReads[0]!.ms).toBeGreaterThanOrEqual(390);
    expect(eventReads[1]).toMatchObject({ ok: false, error: expect.stringContaining('150 ms') });
    expect(recorder.logs.filter((line) => line.msg === FIRST_CALL_MESSAGE)).toHaveLength(1);
  });

  test('a document whose DocumentIncarnation did not change is not looked at again', async () => {
    serveInstance();
    serveDocuments(
      [200, doc(4, event({ EventId: 'A' }))],
      // Same incarnation, different content (Azure never does this): not looked at, so A is not withdrawn.
      [200, doc(4)],
      [200, doc(5, event({ EventId: 'A' }), event({ EventId: 'C', EventType: 'Terminate' }))],
    );
    const events = await collectEvents(provider(), watchRecorder(), 2);
    expect(events.map((found) => (found.type === 'notice' ? `notice ${(found.notice.raw as { EventId: string }).EventId}` : 'withdrawn'))).toEqual([
      'notice A',
      'notice C',
    ]);
  });

  test('an unknown event type is logged once and ignored', async () => {
    serveInstance();
    serveDocuments([200, doc(1, event({ EventId: 'X', EventType: 'Hibernate' }))], [200, doc(2, event({ EventId: 'X', EventType: 'Hibernate' }), event())]);
    const recorder = watchRecorder();
    const events = await collectEvents(provider(), recorder, 1);
    expect(noticeOf(events[0]).kind).toBe('preempt');
    expect(recorder.logs.filter((line) => String(line.msg).includes('"Hibernate" is unknown'))).toHaveLength(1);
  });

  test('a malformed document is reported as a body error and the poll goes on', async () => {
    serveInstance();
    serveDocuments([200, '<html>gateway</html>'], [200, { Events: 'none' }], [200, doc(1, event())]);
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    const errors = recorder.reads.filter((read) => !read.ok).map((read) => read.error);
    expect(errors).toEqual([expect.stringContaining('not JSON'), expect.stringContaining('expected {"DocumentIncarnation"')]);
  });

  test('the VM name is retried until the instance document answers', async () => {
    azure().get(INSTANCE.path).query(INSTANCE.query).reply(500, 'busy');
    serveInstance();
    serveDocuments([200, doc(1, event())]);
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    expect(recorder.reads.filter((read) => read.source === 'instance').map((read) => read.status)).toEqual([500, 200]);
  });
});

describe('Azure acknowledgement', () => {
  const notice = (raw: unknown, providerName: Notice['provider'] = 'azure'): Notice => ({
    id: 'azure-reboot-0000000000000000',
    provider: providerName,
    kind: 'reboot',
    deadline: new Date(),
    detectedAt: new Date(),
    instance: {},
    raw,
  });

  test('acknowledge POSTs StartRequests with the event id and the Metadata header', async () => {
    let received: unknown;
    azure()
      .post(EVENTS.path, (body) => ((received = body), true))
      .query(EVENTS.query)
      .matchHeader('content-type', 'application/json')
      .reply(200);
    await provider().acknowledge(notice(event({ EventId: 'ACK-ME' })), new AbortController().signal);
    expect(received).toEqual({ StartRequests: [{ EventId: 'ACK-ME' }] });
  });

  test('acknowledge retries after a 429 and fails with the status after three refusals', async () => {
    azure().post(EVENTS.path).query(EVENTS.query).reply(429).post(EVENTS.path).query(EVENTS.query).reply(200);
    await expect(provider().acknowledge(notice(event()), new AbortController().signal)).resolves.toBeUndefined();
    azure().post(EVENTS.path).query(EVENTS.query).times(3).reply(500);
    await expect(provider().acknowledge(notice(event()), new AbortController().signal)).rejects.toMatchObject({ code: 'ERR_METADATA_HTTP', message: expect.stringContaining('HTTP 500') });
  });

  test('acknowledge refuses a notice that is not an Azure event', async () => {
    await expect(provider().acknowledge(notice({ action: 'terminate' }, 'aws'), new AbortController().signal)).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });
});

describe('Azure Scheduled Events parsing', () => {
  test('parseScheduledEvents keeps each raw event and tolerates a missing NotBefore', () => {
    const { NotBefore: _, ...withoutDate } = event();
    const parsed = parseScheduledEvents(JSON.stringify(doc(9, withoutDate)));
    expect(parsed.incarnation).toBe(9);
    expect(parsed.events[0]).toMatchObject({ eventId: 'C7061BAC-AFDC-4513-B24B-AA5F13A16123', notBefore: '', raw: withoutDate });
  });

  test('eventDeadline prefers NotBefore, then now for Started, then the minimum notice', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const [scheduled] = parseScheduledEvents(JSON.stringify(doc(1, event({ NotBefore: 'Tue, 01 Jan 2030 00:10:00 GMT' })))).events;
    expect(eventDeadline(scheduled!, 'preempt', now).toISOString()).toBe('2030-01-01T00:10:00.000Z');
    expect(eventDeadline({ ...scheduled!, notBefore: '', status: 'Started' }, 'redeploy', now)).toEqual(now);
    expect(eventDeadline({ ...scheduled!, notBefore: '' }, 'redeploy', now).toISOString()).toBe('2030-01-01T00:10:00.000Z');
    expect(eventDeadline({ ...scheduled!, notBefore: 'soon' }, 'terminate', now).toISOString()).toBe('2030-01-01T00:05:00.000Z');
  });

  test('the tracker does not parse a body identical to the last one', () => {
    const tracker = new ScheduledEventsTracker(VM, {}, silentLogger());
    const body = JSON.stringify(doc(1, event()));
    expect(tracker.update(body, new Date())).toHaveLength(1);
    expect(tracker.update(body, new Date())).toEqual([]);
    // A malformed body throws and is not remembered, so the good one after it is read.
    expect(() => tracker.update('{', new Date())).toThrow(/not JSON/);
    expect(tracker.update(JSON.stringify(doc(2)), new Date())).toEqual([expect.objectContaining({ type: 'withdrawn' })]);
  });

  test('parseAzureInstance maps compute fields and drops empty ones', () => {
    expect(parseAzureInstance(JSON.stringify(instanceDocument()))).toEqual({
      name: VM,
      id: 'vm-id-1',
      type: 'Standard_NC6s_v3',
      region: 'westeurope',
      lifecycle: 'spot',
      hostname: 'trainer',
    });
    expect(() => parseAzureInstance('{"compute":{}}')).toThrow(/expected \{"compute": \{"name"/);
  });
});
