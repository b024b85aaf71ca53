import nock from 'nock';
import { GcpProvider } from '../../src/providers/gcp/provider.js';
import type { ProviderEvent } from '../../src/providers/types.js';
import { noticeId } from '../../src/notice/notice.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder, type WatchRecorder } from '../helpers/provider-watch.js';

// A name nock answers for: nothing here can reach a real metadata service.
const BASE = 'http://gce.test';
const V1 = '/computeMetadata/v1/';
const FLAVOR = { 'Metadata-Flavor': 'Google' };
/** A provider on a fake clock: its backoffs and retries take no real time. */
const gcp = (clock = new FakeClock(), preemptionNoticeDurationMs = 0) =>
  new GcpProvider(testProviderOptions(BASE, { gcp: { hangTimeoutSeconds: 5, preemptionNoticeDurationMs }, clock, bootId: 'boot-1' }));

/** A GCE metadata server that insists on the flavor header; facts answer at once. */
function gce() {
  const scope = nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } });
  scope.persist().get(`${V1}instance/id`).reply(200, '42', { ...FLAVOR, ETag: 'id' });
  scope.persist().get(`${V1}instance/zone`).reply(200, 'projects/1/zones/europe-west4-b', { ...FLAVOR, ETag: 'zone' });
  scope.persist().get((path) => path.startsWith(`${V1}instance/`) && !/preempted|maintenance|\/id$|zone/.test(path)).reply(404, 'Not Found', FLAVOR);
  return scope;
}

/** Query parameters every read of a key carries. */
const keyQuery = (key: string): Record<string, string> => (key === 'upcoming-maintenance' ? { alt: 'json' } : {});

/** The first (plain) read of a key. */
function first(key: string, status: number, value: string, etag?: string) {
  nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } })
    .get(`${V1}instance/${key}`)
    .query(keyQuery(key))
    .reply(status, value, { ...FLAVOR, ...(etag ? { ETag: etag } : {}) });
}

/** A hanging GET that must carry last_etag=`lastEtag`; answers with the new value. */
function change(key: string, lastEtag: string, value: string, etag: string) {
  nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } })
    .get(`${V1}instance/${key}`)
    .query({ ...keyQuery(key), wait_for_change: 'true', last_etag: lastEtag, timeout_sec: '5' })
    .reply(200, value, { ...FLAVOR, ETag: etag });
}

/** What a hanging GET gets when nothing changes before timeout_sec: the same value. */
function unchanged(key: string, value: string, etag: string) {
  nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } })
    .persist()
    .get(`${V1}instance/${key}`)
    .query({ ...keyQuery(key), wait_for_change: 'true', last_etag: etag, timeout_sec: '5' })
    .delay(100)
    .reply(200, value, { ...FLAVOR, ETag: etag });
}

/** A key that holds `value` from the first read on and never changes. */
function quiet(key: string, value: string) {
  first(key, 200, value, `${key}-0`);
  unchanged(key, value, `${key}-0`);
}

function quietMaintenance() {
  quiet('maintenance-event', 'NONE');
  quiet('upcoming-maintenance', '{}');
}

const readsOf = (recorder: WatchRecorder, source: string) => recorder.reads.filter((read) => read.source === source);

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('GCP provider', () => {
  test('a VM already preempted at start is a preempt notice from the first read, due 30 s after detection', async () => {
    gce();
    first('preempted', 200, 'TRUE', 'p1');
    quietMaintenance();
    const notice = noticeOf((await collectEvents(gcp(), watchRecorder(), 1))[0]);
    expect(notice).toMatchObject({ provider: 'gcp', kind: 'preempt', instance: { id: '42', zone: 'europe-west4-b', region: 'europe-west4' } });
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBe(30_000);
  });

  test('after the first read each key is watched with a hanging GET carrying its last ETag', async () => {
    gce();
    first('preempted', 200, 'FALSE', 'p1');
    change('preempted', 'p1', 'TRUE', 'p2');
    quietMaintenance();
    const recorder = watchRecorder();
    const notice = noticeOf((await collectEvents(gcp(), recorder, 1))[0]);
    expect(notice.kind).toBe('preempt');
    expect(notice.raw).toEqual({ path: 'instance/preempted', value: 'TRUE', etag: 'p2' });
    expect(readsOf(recorder, 'instance/preempted').map((read) => read.ok)).toEqual([true, true]);
  });

  test('maintenance is a notice due 60 s after detection, and NONE again withdraws it', async () => {
    gce();
    first('preempted', 200, 'FALSE', 'p1');
    unchanged('preempted', 'FALSE', 'p1');
    quiet('upcoming-maintenance', '{}');
    first('maintenance-event', 200, 'NONE', 'm1');
    change('maintenance-event', 'm1', 'MIGRATE_ON_HOST_MAINTENANCE', 'm2');
    change('maintenance-event', 'm2', 'NONE', 'm3');
    unchanged('maintenance-event', 'NONE', 'm3');
    const [shown, withdrawn] = await collectEvents(gcp(), watchRecorder(), 2);
    const notice = noticeOf(shown);
    expect(notice.kind).toBe('maintenance');
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBe(60_000);
    expect(notice.id).toBe(noticeId('gcp', 'maintenance', `boot-1\0MIGRATE_ON_HOST_MAINTENANCE\0${notice.detectedAt.toISOString()}`));
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: expect.stringContaining('back to NONE') });
  });

  test('a 503 is retried after about a second and the notice still arrives', async () => {
    gce();
    first('preempted', 503, 'Service Unavailable');
    first('preempted', 200, 'TRUE', 'p1');
    quietMaintenance();
    const recorder = watchRecorder();
    const clock = new FakeClock();
    const notice = noticeOf((await collectEvents(gcp(clock), recorder, 1))[0]);
    expect(notice.kind).toBe('preempt');
    expect(readsOf(recorder, 'instance/preempted')[0]).toMatchObject({ ok: false, status: 503, error: 'instance/preempted: HTTP 503' });
    // The only wait: about a second (±2 %), not the backoff's 250 to 500 ms; hanging GETs need none.
    expect(clock.sleeps).toHaveLength(1);
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(980);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(1020);
  });

  test('a value that is neither TRUE nor FALSE is a failed read, not a notice, and the watch goes on', async () => {
    gce();
    first('preempted', 200, 'MAYBE', 'p1');
    first('preempted', 200, 'TRUE', 'p2');
    quietMaintenance();
    const recorder = watchRecorder();
    const events: ProviderEvent[] = await collectEvents(gcp(), recorder, 1);
    expect(noticeOf(events[0]).raw).toMatchObject({ value: 'TRUE' });
    expect(readsOf(recorder, 'instance/preempted')[0]).toMatchObject({ ok: false, error: expect.stringContaining('expected TRUE or FALSE, got "MAYBE"') });
  });

  test('an answer without Metadata-Flavor: Google is refused with one clear error log', async () => {
    // Something else answers on the address (a proxy, another cloud): 200, but no flavor header.
    nock(BASE).persist().get(/.*/).reply(200, 'TRUE');
    const recorder = watchRecorder();
    const check = setInterval(() => readsOf(recorder, 'instance/maintenance-event').length >= 1 && readsOf(recorder, 'instance/preempted').length >= 1 && recorder.abort(), 5);
    const events: ProviderEvent[] = [];
    for await (const event of gcp().watch(recorder.context)) events.push(event);
    clearInterval(check);
    expect(events).toEqual([]);
    expect(readsOf(recorder, 'instance/preempted')[0]).toMatchObject({ ok: false, error: expect.stringContaining('is not a GCE metadata server') });
    expect(recorder.logs.filter((line) => line.level === 'error' && String(line.msg).includes('not a GCE metadata server'))).toHaveLength(1);
  });

  test('with a Spot preemption notice duration the preempt deadline is that plus the 30 s after the soft-off', async () => {
    gce();
    first('preempted', 200, 'TRUE', 'p1');
    quietMaintenance();
    const notice = noticeOf((await collectEvents(gcp(new FakeClock(), 120_000), watchRecorder(), 1))[0]);
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBe(150_000);
  });

  test('maintenance-event is read from the start of the watch, before any wait: GCE warns only a VM that read it', async () => {
    gce();
    first('preempted', 200, 'FALSE', 'p1');
    unchanged('preempted', 'FALSE', 'p1');
    const plainRead = nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } }).get(`${V1}instance/maintenance-event`).reply(200, 'NONE', { ...FLAVOR, ETag: 'm0' });
    unchanged('maintenance-event', 'NONE', 'm0');
    quiet('upcoming-maintenance', '{}');
    const recorder = watchRecorder();
    const clock = new FakeClock();
    const watching = collectEvents(gcp(clock), recorder, 1).catch(() => []);
    const read = await recorder.readMatching((entry) => entry.source === 'instance/maintenance-event');
    recorder.abort();
    await watching;
    expect(read).toMatchObject({ ok: true, status: 200 });
    // A plain GET (no wait_for_change), with no wait before it.
    expect(plainRead.isDone()).toBe(true);
    expect(clock.sleeps).toEqual([]);
  });
});

const GPU_FAILURE = {
  can_reschedule: false,
  latest_window_start_time: '2026-12-07T10:00:00Z',
  maintenance_reasons: ['FAILURE_GPU_XID'],
  maintenance_status: 'PENDING',
  type: 'UNSCHEDULED',
  window_end_time: '2026-12-07T11:00:00Z',
  window_start_time: '2026-12-07T09:00:00Z',
};
const pending = (changes: Record<string, unknown> = {}) => JSON.stringify({ ...GPU_FAILURE, ...changes });

/** A VM with nothing preempted and no maintenance-event: only upcoming-maintenance speaks. */
function onlyUpcoming() {
  gce();
  quiet('preempted', 'FALSE');
  quiet('maintenance-event', 'NONE');
}

/** Any answer to a hanging GET of upcoming-maintenance carrying last_etag `lastEtag`. */
function upcomingAnswer(lastEtag: string, status: number, body: string, etag?: string) {
  nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } })
    .get(`${V1}instance/upcoming-maintenance`)
    .query({ alt: 'json', wait_for_change: 'true', last_etag: lastEtag, timeout_sec: '5' })
    .reply(status, body, { ...FLAVOR, ...(etag ? { ETag: etag } : {}) });
}

describe('GCP upcoming maintenance', () => {
  test('PENDING is an advisory maintenance notice due at the window start, with its reasons; a moved window keeps the id; COMPLETE withdraws it', async () => {
    onlyUpcoming();
    first('upcoming-maintenance', 200, '{}', 'u0');
    change('upcoming-maintenance', 'u0', pending(), 'u1');
    change('upcoming-maintenance', 'u1', pending({ window_start_time: '2026-12-07T09:30:00Z' }), 'u2');
    change('upcoming-maintenance', 'u2', pending({ maintenance_status: 'ONGOING', window_start_time: '2026-12-07T09:30:00Z' }), 'u3');
    change('upcoming-maintenance', 'u3', JSON.stringify({ maintenance_status: 'COMPLETE' }), 'u4');
    change('upcoming-maintenance', 'u4', pending({ maintenance_reasons: ['PLANNED_UPDATE'] }), 'u5');
    unchanged('upcoming-maintenance', pending({ maintenance_reasons: ['PLANNED_UPDATE'] }), 'u5');
    const [shown, moved, ongoing, withdrawn, next] = await collectEvents(gcp(), watchRecorder(), 5);
    const notice = noticeOf(shown);
    expect(notice).toMatchObject({ provider: 'gcp', kind: 'maintenance', advisory: true, reasons: ['FAILURE_GPU_XID'] });
    expect(notice.deadline).toEqual(new Date('2026-12-07T09:00:00Z'));
    expect(notice.raw).toEqual({ path: 'instance/upcoming-maintenance', value: GPU_FAILURE, etag: 'u1' });
    expect(notice.id).toBe(noticeId('gcp', 'maintenance', 'boot-1\0upcoming-maintenance\0UNSCHEDULED\0FAILURE_GPU_XID\0' + '0'));
    expect(noticeOf(moved)).toMatchObject({ id: notice.id, deadline: new Date('2026-12-07T09:30:00Z') });
    expect(noticeOf(ongoing).id).toBe(notice.id);
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: 'GCE upcoming maintenance completed' });
    // The next maintenance of the same boot is another notice.
    expect(noticeOf(next).id).not.toBe(notice.id);
  });

  test('one that disappears and comes back within a minute is the same notice (a flicker), not a new plan', async () => {
    onlyUpcoming();
    first('upcoming-maintenance', 200, pending(), 'u1');
    change('upcoming-maintenance', 'u1', '{}', 'u2');
    change('upcoming-maintenance', 'u2', pending(), 'u3');
    unchanged('upcoming-maintenance', pending(), 'u3');
    const [shown, withdrawn, back] = await collectEvents(gcp(), watchRecorder(), 3);
    expect(withdrawn).toMatchObject({ type: 'withdrawn', noticeId: noticeOf(shown).id });
    expect(noticeOf(back).id).toBe(noticeOf(shown).id);
  });

  test.each([
    ['{ }', 200, '{ }'],
    ['NONE', 200, 'NONE'],
    ['503 "no notifications have been received yet"', 503, '{"error":"no notifications have been received yet, try again later"}'],
  ])('nothing pending shown as %s withdraws the notice', async (_shape, status, body) => {
    onlyUpcoming();
    first('upcoming-maintenance', 200, pending(), 'u1');
    upcomingAnswer('u1', status, body, 'u2');
    unchanged('upcoming-maintenance', body, 'u2');
    const recorder = watchRecorder();
    const [shown, withdrawn] = await collectEvents(gcp(), recorder, 2);
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: noticeOf(shown).id, reason: 'GCE upcoming maintenance no longer pending' });
    expect(readsOf(recorder, 'instance/upcoming-maintenance').every((read) => read.ok)).toBe(true);
  });

  test('any other non-200 is unknown: a failed read, never a withdrawal', async () => {
    onlyUpcoming();
    first('upcoming-maintenance', 200, pending(), 'u1');
    upcomingAnswer('u1', 500, 'Internal Server Error');
    upcomingAnswer('u1', 503, 'Service Unavailable');
    upcomingAnswer('u1', 200, JSON.stringify({ maintenance_status: 'COMPLETE' }), 'u2');
    unchanged('upcoming-maintenance', JSON.stringify({ maintenance_status: 'COMPLETE' }), 'u2');
    const recorder = watchRecorder();
    const [shown, withdrawn] = await collectEvents(gcp(), recorder, 2);
    expect(withdrawn).toMatchObject({ type: 'withdrawn', noticeId: noticeOf(shown).id, reason: 'GCE upcoming maintenance completed' });
    const reads = readsOf(recorder, 'instance/upcoming-maintenance');
    expect(reads.slice(0, 4).map((read) => [read.ok, read.status])).toEqual([
      [true, 200],
      [false, 500],
      [false, 503],
      [true, 200],
    ]);
  });

  test('a machine without the key (404) is neither a notice nor a failure', async () => {
    onlyUpcoming();
    nock(BASE).persist().get(`${V1}instance/upcoming-maintenance`).query({ alt: 'json' }).reply(404, 'Not Found', FLAVOR);
    const recorder = watchRecorder();
    const watching = collectEvents(gcp(), recorder, 1).catch((error: Error) => error.message);
    const read = await recorder.readMatching((entry) => entry.source === 'instance/upcoming-maintenance');
    recorder.abort();
    expect(read).toMatchObject({ ok: true, status: 404 });
    expect(await watching).toContain('got 0');
  });
});
