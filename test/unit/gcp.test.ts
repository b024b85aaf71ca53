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
const gcp = (clock = new FakeClock()) => new GcpProvider(testProviderOptions(BASE, { gcp: { hangTimeoutSeconds: 5 }, clock, bootId: 'boot-1' }));

/** A GCE metadata server that insists on the flavor header; facts answer at once. */
function gce() {
  const scope = nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } });
  scope.persist().get(`${V1}instance/id`).reply(200, '42', { ...FLAVOR, ETag: 'id' });
  scope.persist().get(`${V1}instance/zone`).reply(200, 'projects/1/zones/europe-west4-b', { ...FLAVOR, ETag: 'zone' });
  scope.persist().get((path) => path.startsWith(`${V1}instance/`) && !/preempted|maintenance-event|\/id$|zone/.test(path)).reply(404, 'Not Found', FLAVOR);
  return scope;
}

/** The first (plain) read of a key. */
function first(key: string, status: number, value: string, etag?: string) {
  nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } })
    .get(`${V1}instance/${key}`)
    .reply(status, value, { ...FLAVOR, ...(etag ? { ETag: etag } : {}) });
}

/** A hanging GET that must carry last_etag=`lastEtag`; answers with the new value. */
function change(key: string, lastEtag: string, value: string, etag: string) {
  nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } })
    .get(`${V1}instance/${key}`)
    .query({ wait_for_change: 'true', last_etag: lastEtag, timeout_sec: '5' })
    .reply(200, value, { ...FLAVOR, ETag: etag });
}

/** What a hanging GET gets when nothing changes before timeout_sec: the same value. */
function unchanged(key: string, value: string, etag: string) {
  nock(BASE, { reqheaders: { 'metadata-flavor': 'Google' } })
    .persist()
    .get(`${V1}instance/${key}`)
    .query({ wait_for_change: 'true', last_etag: etag, timeout_sec: '5' })
    .delay(100)
    .reply(200, value, { ...FLAVOR, ETag: etag });
}

function quietMaintenance() {
  first('maintenance-event', 200, 'NONE', 'm0');
  unchanged('maintenance-event', 'NONE', 'm0');
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
});
