import nock from 'nock';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { TokenSession } from '../../src/providers/metadata/token-session.js';
import { HOP_LIMIT_WARNING, IMDS_TOKENS } from '../../src/providers/aws/imds.js';
import { parseAwsEventDate, parseMaintenance } from '../../src/providers/aws/payloads.js';
import { AwsProvider } from '../../src/providers/aws/provider.js';
import { MetadataClient } from '../../src/providers/metadata/client.js';
import type { MetadataError } from '../../src/lib/errors.js';
import { silentLogger } from '../../src/lib/log.js';
import type { Provider, ProviderEvent } from '../../src/providers/types.js';
import { noticeId } from '../../src/notice/notice.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { noReply } from '../helpers/no-reply.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder, type WatchRecorder } from '../helpers/provider-watch.js';
import { nockOnly } from '../helpers/nock-only.js';

// A name nock answers for: nothing here can reach a real metadata service.
const BASE = 'http://imds.test';
const META = '/latest/meta-data/';
const NOT_FOUND = '<?xml version="1.0" encoding="iso-8859-1"?>\n<html><head><title>404 - Not Found</title></head></html>\n';
/** A provider on a fake clock: its intervals and backoffs take no real time. */
function aws(overrides: Parameters<typeof testProviderOptions>[1] = {}) {
  return new AwsProvider(testProviderOptions(BASE, { clock: new FakeClock(), bootId: 'boot-1', ...overrides }));
}
/** Every source at one cadence, so the minute-long maintenance interval is no rarer than the rest. */
const MINUTE_POLL = { pollIntervalMs: 60_000 };

type Reply = [number, string];

/**
 * A scripted IMDS: each path answers its replies in order (the last one repeats), 404
 * otherwise; facts answer at once. Counts requests per path.
 */
function fakeImds(script: Record<string, Reply[]> = {}, token = 'token-1') {
  const counts: Record<string, number> = {};
  const scope = nock(BASE).persist();
  scope.put('/latest/api/token').matchHeader('x-aws-ec2-metadata-token-ttl-seconds', '21600').reply(200, token);
  const facts: Record<string, string> = { 'instance-id': 'i-0abc', 'instance-type': 'm5.large', 'placement/region': 'eu-west-1' };
  scope
    .get((path) => path.startsWith(META))
    .matchHeader('x-aws-ec2-metadata-token', token)
    .reply((request: unknown) => {
      // nock 15 hands the reply callback a fetch Request, whatever its typings say.
      const path = new URL((request as Request).url).pathname.slice(META.length);
      counts[path] = (counts[path] ?? 0) + 1;
      if (facts[path]) return [200, facts[path]];
      const replies = script[path];
      if (!replies || replies.length === 0) return [404, NOT_FOUND];
      return replies.length > 1 ? replies.shift()! : replies[0]!;
    });
  return { counts };
}

/** Watches until `done()` holds (checked every few ms), then returns every event seen. */
async function eventsUntil(provider: Provider, recorder: WatchRecorder, done: () => boolean, limitMs = 10_000): Promise<ProviderEvent[]> {
  const events: ProviderEvent[] = [];
  const check = setInterval(() => done() && recorder.abort(), 5);
  const limit = setTimeout(() => recorder.abort(), limitMs);
  try {
    for await (const event of provider.watch(recorder.context)) events.push(event);
  } finally {
    clearInterval(check);
    clearTimeout(limit);
  }
  expect(done()).toBe(true);
  return events;
}

const readsOf = (recorder: WatchRecorder, source: string) => recorder.reads.filter((read) => read.source === source);

nockOnly();

describe('AWS interruption sources', () => {
  test.each([
    ['terminate', '2026-11-22T04:02:00Z'],
    ['stop', '2026-11-22T04:03:00Z'],
  ] as const)('spot/instance-action %s (time %s) becomes a notice of that kind due at its time', async (action, time) => {
    fakeImds({ 'spot/instance-action': [[200, JSON.stringify({ action, time })]] });
    const recorder = watchRecorder();
    const [event] = await collectEvents(aws(), recorder, 1);
    const notice = noticeOf(event);
    expect(notice).toMatchObject({ provider: 'aws', kind: action, raw: { action, time } });
    expect(notice.deadline?.toISOString()).toBe(new Date(time).toISOString());
    expect(notice.id).toBe(noticeId('aws', action, 'boot-1\0spot/instance-action'));
    expect(notice.instance).toMatchObject({ id: 'i-0abc', type: 'm5.large', region: 'eu-west-1' });
  });

  test('a hibernate gets no warning: its deadline is aws.hibernateBudget after it was first seen, whatever its time says, and stays put', async () => {
    const imds = fakeImds({ 'spot/instance-action': [[200, '{"action":"hibernate","time":"2026-11-22T04:04:00Z"}']] });
    const recorder = watchRecorder();
    const seenFrom = Date.now();
    const events = await eventsUntil(aws({ aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 1000, hibernateBudgetMs: 3000 } }), recorder, () => (imds.counts['spot/instance-action'] ?? 0) >= 5);
    expect(events).toHaveLength(1);
    const notice = noticeOf(events[0]);
    expect(notice).toMatchObject({ kind: 'hibernate', id: noticeId('aws', 'hibernate', 'boot-1\0spot/instance-action') });
    expect(notice.deadline!.getTime()).toBeGreaterThanOrEqual(seenFrom + 3000);
    expect(notice.deadline!.getTime()).toBeLessThanOrEqual(notice.detectedAt.getTime() + 3000);
  });

  test('a notice polled many times is yielded once, with the same id', async () => {
    const imds = fakeImds({ 'spot/instance-action': [[200, '{"action":"terminate","time":"2026-11-22T04:02:00Z"}']] });
    const recorder = watchRecorder();
    const events = await eventsUntil(aws(), recorder, () => (imds.counts['spot/instance-action'] ?? 0) >= 10);
    expect(events.filter((event) => event.type === 'notice' && event.notice.kind === 'terminate')).toHaveLength(1);
  });

  test('404 on every source means no notice, and every read counts as healthy', async () => {
    const imds = fakeImds();
    const recorder = watchRecorder();
    const events = await eventsUntil(aws(), recorder, () => (imds.counts['spot/instance-action'] ?? 0) >= 5);
    expect(events).toEqual([]);
    expect(readsOf(recorder, 'spot/instance-action').every((read) => read.ok && read.status === 404)).toBe(true);
    expect(readsOf(recorder, 'events/maintenance/scheduled').length).toBeGreaterThan(0);
  });

  test('a notice that disappears again (404) yields nothing more: AWS does not cancel spot notices', async () => {
    const imds = fakeImds({ 'spot/instance-action': [[200, '{"action":"stop","time":"2026-11-22T04:02:00Z"}'], [404, NOT_FOUND]] });
    const recorder = watchRecorder();
    const events = await eventsUntil(aws(), recorder, () => (imds.counts['spot/instance-action'] ?? 0) >= 5);
    expect(events.map((event) => event.type)).toEqual(['notice']);
  });

  test('a rebalance recommendation is an advisory notice without a deadline', async () => {
    fakeImds({ 'events/recommendations/rebalance': [[200, '{"noticeTime":"2026-11-22T03:50:00Z"}']] });
    const [event] = await collectEvents(aws(), watchRecorder(), 1);
    expect(noticeOf(event)).toMatchObject({ kind: 'rebalance', deadline: null, id: noticeId('aws', 'rebalance', 'boot-1\0events/recommendations/rebalance') });
  });

  test('a rebalance whose noticeTime moves on every answer is one notice', async () => {
    const { counts } = fakeImds({
      'events/recommendations/rebalance': ['03:50:00', '03:50:05', '03:50:10'].map((time): Reply => [200, `{"noticeTime":"2026-11-22T${time}Z"}`]),
    });
    const events = await eventsUntil(aws(), watchRecorder(), () => (counts['events/recommendations/rebalance'] ?? 0) >= 4);
    expect(events.map((event) => noticeOf(event).kind)).toEqual(['rebalance']);
  });

  test('a spot action whose time moves keeps its id: it is shown again only with the new deadline', async () => {
    const times = ['04:02:00', '04:02:00', '04:02:07', '04:02:07'];
    const { counts } = fakeImds({ 'spot/instance-action': times.map((time): Reply => [200, `{"action":"terminate","time":"2026-11-22T${time}Z"}`]) });
    const events = await eventsUntil(aws(), watchRecorder(), () => (counts['spot/instance-action'] ?? 0) >= 5);
    const notices = events.map(noticeOf);
    expect(notices.map((notice) => notice.deadline?.toISOString())).toEqual(['2026-11-22T04:02:00.000Z', '2026-11-22T04:02:07.000Z']);
    expect(new Set(notices.map((notice) => notice.id)).size).toBe(1);
  });

  test('a scheduled maintenance event is a notice due at NotBefore, and its cancellation withdraws it', async () => {
    const event = {
      NotBefore: '21 Jan 2019 09:00:43 GMT',
      Code: 'system-reboot',
      Description: 'scheduled reboot',
      EventId: 'instance-event-0d59937288b749b32',
      NotAfter: '21 Jan 2019 09:17:23 GMT',
      State: 'active',
    };
    fakeImds({
      'events/maintenance/scheduled': [
        [200, JSON.stringify([event])],
        [200, JSON.stringify([event])],
        [200, JSON.stringify([{ ...event, State: 'canceled' }])],
      ],
    });
    const [shown, withdrawn] = await collectEvents(aws(MINUTE_POLL), watchRecorder(), 2);
    const notice = noticeOf(shown);
    expect(notice.kind).toBe('maintenance');
    expect(notice.deadline?.toISOString()).toBe('2019-01-21T09:00:43.000Z');
    expect(notice.id).toBe(noticeId('aws', 'maintenance', 'instance-event-0d59937288b749b32'));
    expect(notice.raw).toEqual(event);
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: expect.stringContaining('canceled') });
  });

  test('a maintenance event first seen as completed, and an empty list, yield nothing', async () => {
    const imds = fakeImds({
      'events/maintenance/scheduled': [
        [200, '[]'],
        [200, '[{"NotBefore":"21 Jan 2019 09:00:43 GMT","EventId":"instance-event-1","State":"completed"}]'],
      ],
    });
    const recorder = watchRecorder();
    const events = await eventsUntil(aws(MINUTE_POLL), recorder, () => (imds.counts['events/maintenance/scheduled'] ?? 0) >= 4);
    expect(events).toEqual([]);
  });

  test('Auto Scaling: Terminated is a terminate notice due aws.lifecycleTimeout after it was seen; InService again withdraws it; a second termination is a new notice', async () => {
    const states = ['InService', 'Terminated', 'Terminated', 'InService', 'InService', 'Terminated'];
    const { counts } = fakeImds({ 'autoscaling/target-lifecycle-state': states.map((state): Reply => [200, `${state}\n`]) });
    const seenFrom = Date.now();
    const events = await eventsUntil(
      aws({ aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 1000, lifecycleTimeoutMs: 600_000 } }),
      watchRecorder(),
      () => (counts['autoscaling/target-lifecycle-state'] ?? 0) >= 8,
    );
    const [first, withdrawn, second] = events;
    const notice = noticeOf(first);
    expect(notice).toMatchObject({ provider: 'aws', kind: 'terminate', raw: 'Terminated', id: noticeId('aws', 'terminate', 'boot-1\0autoscaling/target-lifecycle-state') });
    expect(notice.deadline!.getTime()).toBeGreaterThanOrEqual(seenFrom + 600_000);
    expect(notice.deadline!.getTime()).toBeLessThanOrEqual(notice.detectedAt.getTime() + 600_000);
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: 'the Auto Scaling target lifecycle state is InService again' });
    expect(noticeOf(second).id).not.toBe(notice.id);
    expect(events).toHaveLength(3);
  });

  test('Auto Scaling: a 404 (no group) is quiet and the item is then read once a minute', async () => {
    const clock = new FakeClock();
    const { counts } = fakeImds();
    const recorder = watchRecorder();
    const events = await eventsUntil(aws({ clock, pollIntervalMs: 1000 }), recorder, () => (counts['spot/instance-action'] ?? 0) >= 120);
    expect(events).toEqual([]);
    expect(readsOf(recorder, 'autoscaling/target-lifecycle-state').every((read) => read.ok && read.status === 404)).toBe(true);
    // About 120 s of fake time at a 1 s poll: two or three lifecycle reads, not 120.
    expect(counts['autoscaling/target-lifecycle-state']).toBeLessThanOrEqual(4);
  });

  test.each([
    ['a lifecycle state that is not a state name', 'autoscaling/target-lifecycle-state', '<html>oops</html>', 'expected a lifecycle state such as InService'],
    ['a body that is not JSON', 'spot/instance-action', '<html>oops</html>', 'is not JSON'],
    ['JSON of the wrong shape', 'spot/instance-action', '{"action":"explode","time":"2026-11-22T04:02:00Z"}', 'expected {"action"'],
    ['an unparseable time', 'spot/instance-action', '{"action":"terminate","time":"soon"}', 'ISO 8601'],
    ['a rebalance without noticeTime', 'events/recommendations/rebalance', '{"when":"now"}', 'noticeTime'],
    ['a maintenance date in ISO form', 'events/maintenance/scheduled', '[{"NotBefore":"2019-01-21T09:00:43Z","EventId":"e-1"}]', '21 Jan 2019 09:00:43 GMT'],
  ])('%s yields no notice, is reported as a failed read, and the watch goes on to the next notice', async (_name, path, body, message) => {
    const good = '{"action":"terminate","time":"2026-11-22T04:02:00Z"}';
    fakeImds(path === 'spot/instance-action' ? { [path]: [[200, body], [200, body], [200, good]] } : { [path]: [[200, body]], 'spot/instance-action': [[404, NOT_FOUND], [404, NOT_FOUND], [200, good]] });
    const recorder = watchRecorder();
    const events = await collectEvents(aws(), recorder, 1);
    expect(events.map((event) => event.type === 'notice' && event.notice.kind)).toEqual(['terminate']);
    const failures = readsOf(recorder, path).filter((read) => !read.ok);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures[0]).toMatchObject({ status: 200, error: expect.stringContaining(message) });
  });

  test.each([500, 503, 429])('HTTP %i is backed off, logged once for the run, and recovery is logged', async (status) => {
    const good = '{"action":"terminate","time":"2026-11-22T04:02:00Z"}';
    fakeImds({ 'spot/instance-action': [[status, 'busy'], [status, 'busy'], [status, 'busy'], [status, 'busy'], [200, good]] });
    const recorder = watchRecorder();
    const [event] = await collectEvents(aws(), recorder, 1);
    expect(noticeOf(event).kind).toBe('terminate');
    expect(readsOf(recorder, 'spot/instance-action').filter((read) => !read.ok)).toHaveLength(4);
    expect(readsOf(recorder, 'spot/instance-action').find((read) => !read.ok)).toMatchObject({ status, error: `spot/instance-action: HTTP ${status}` });
    const warnings = recorder.logs.filter((line) => line.source === 'spot/instance-action' && line.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(recorder.logs.some((line) => String(line.msg).includes('answering again after 4 failed reads'))).toBe(true);
  });
});

describe('IMDSv2 token handling', () => {
  test('a watch whose token PUT hangs warns once about the hop limit in its log, reports token reads, and keeps trying', async () => {
    nock(BASE).persist().put('/latest/api/token').reply(noReply);
    const recorder = watchRecorder();
    const events = await eventsUntil(aws({ aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 30 } }), recorder, () => readsOf(recorder, 'token').length >= 3);
    expect(events).toEqual([]);
    expect(readsOf(recorder, 'token').every((read) => !read.ok && read.error?.includes('hop limit'))).toBe(true);
    expect(readsOf(recorder, 'spot/instance-action').every((read) => !read.ok)).toBe(true);
    const warnings = recorder.logs.filter((line) => String(line.msg).includes('IMDSv2 hop limit'));
    expect(warnings).toHaveLength(1);
  });

  function captureLog() {
    const lines: Array<{ level: number; msg: string }> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    return { log: pino({ level: 'info' }, sink), lines };
  }

  /** An IMDS session on a stopped clock: the test moves time itself. */
  function session(overrides: Partial<ConstructorParameters<typeof TokenSession>[0]> = {}) {
    const client = new MetadataClient(BASE);
    const { log, lines } = captureLog();
    const clock = new FakeClock({ running: false });
    const imds = new TokenSession({ client, log, clock, protocol: IMDS_TOKENS, plainGets: 'never', requestTimeoutMs: 500, tokenTtlSeconds: 100, tokenTimeoutMs: 500, ...overrides });
    return {
      imds,
      lines,
      advance: (ms: number) => clock.advance(ms),
      close: () => {
        imds.close();
        client.close();
      },
    };
  }
  const signal = new AbortController().signal;

  test('one token serves many reads until 80 % of its TTL, then a new one is fetched', async () => {
    const s = session();
    const tokens = nock(BASE).put('/latest/api/token').matchHeader('x-aws-ec2-metadata-token-ttl-seconds', '100').reply(200, 'first');
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'first').times(3).reply(200, 'i-1');
    for (let i = 0; i < 3; i += 1) await expect(s.imds.get('instance-id', signal)).resolves.toBe('i-1');
    expect(tokens.isDone()).toBe(true);
    s.advance(79_000);
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'first').reply(200, 'i-1');
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('i-1');
    s.advance(2_000);
    const refresh = nock(BASE).put('/latest/api/token').reply(200, 'second');
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'second').reply(200, 'i-1');
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('i-1');
    expect(refresh.isDone()).toBe(true);
    s.close();
  });

  test('concurrent reads share one token request', async () => {
    const s = session();
    nock(BASE).put('/latest/api/token').delay(30).reply(200, 'shared');
    nock(BASE).get((path) => path.startsWith(META)).matchHeader('x-aws-ec2-metadata-token', 'shared').times(3).reply(404, NOT_FOUND);
    await expect(Promise.all(['a', 'b', 'c'].map((path) => s.imds.get(path, signal)))).resolves.toEqual([null, null, null]);
    expect(nock.pendingMocks()).toEqual([]);
    s.close();
  });

  test('a 401 gets a new token and retries once', async () => {
    const s = session();
    nock(BASE).put('/latest/api/token').reply(200, 'stale').put('/latest/api/token').reply(200, 'fresh');
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'stale').reply(401, 'Unauthorized');
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'fresh').reply(200, 'i-1');
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('i-1');
    expect(nock.pendingMocks()).toEqual([]);
    s.close();
  });

  test('a second 401 in a row is an error, not a loop', async () => {
    const s = session();
    nock(BASE).put('/latest/api/token').times(2).reply(200, 'token');
    const gets = nock(BASE).get(`${META}instance-id`).times(2).reply(401, 'Unauthorized');
    await expect(s.imds.get('instance-id', signal)).rejects.toMatchObject({ code: 'ERR_METADATA_HTTP', status: 401 });
    expect(gets.isDone()).toBe(true);
    s.close();
  });

  test('a token PUT that times out logs one hop-limit warning however often it is retried', async () => {
    const s = session({ tokenTimeoutMs: 30 });
    nock(BASE).put('/latest/api/token').times(3).reply(noReply);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await expect(s.imds.get('instance-id', signal)).rejects.toMatchObject({ code: 'ERR_TOKEN_TIMEOUT' });
      // Within the backoff window no new PUT is made: the same error comes back at once.
      await expect(s.imds.get('instance-id', signal)).rejects.toMatchObject({ code: 'ERR_TOKEN_TIMEOUT' });
      s.advance(60_000);
    }
    const warnings = s.lines.filter((line) => line.msg.includes('hop limit'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toBe(HOP_LIMIT_WARNING);
    expect(warnings[0]!.msg).toContain('--http-put-response-hop-limit 2');
    expect(warnings[0]!.msg).toContain('host networking');
    s.close();
  });

  /** A read while the token PUT answers 500: it fails with the session's token error. */
  async function readWhileTokenPutFails(s: ReturnType<typeof session>): Promise<MetadataError> {
    nock(BASE).put('/latest/api/token').reply(500, 'busy');
    return (await s.imds.get('instance-id', signal).then(
      () => new Error('expected the read to fail'),
      (error: unknown) => error,
    )) as MetadataError;
  }

  test('a failed token PUT says when the next may go, and the first read after that asks for a new token', async () => {
    const s = session();
    const failure = await readWhileTokenPutFails(s);
    expect(failure).toMatchObject({ code: 'ERR_METADATA_HTTP', status: 500 });
    let allowed = false;
    void failure.retryReady?.then(() => (allowed = true));
    // Within the backoff the same failure comes back at once, and the retry is not allowed yet.
    await expect(s.imds.get('instance-id', signal)).rejects.toBe(failure);
    expect(allowed).toBe(false);
    s.advance(60_000);
    await failure.retryReady;
    nock(BASE).put('/latest/api/token').reply(200, 'back');
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'back').reply(200, 'i-1');
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('i-1');
    s.close();
  });

  test('closing the session ends a token backoff under way, and the next read asks for a token at once', async () => {
    const s = session();
    const failure = await readWhileTokenPutFails(s);
    let allowed = false;
    void failure.retryReady?.then(() => (allowed = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(allowed).toBe(false);
    // The clock never moves here: only closing can end the wait (whose timer would hold the process open).
    s.imds.close();
    await failure.retryReady;
    nock(BASE).put('/latest/api/token').reply(200, 'back');
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'back').reply(200, 'i-1');
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('i-1');
    s.close();
  });

  test('without allowImdsV1 a failed token PUT never leads to a token-less GET', async () => {
    const s = session();
    nock(BASE).put('/latest/api/token').reply(403, 'Forbidden');
    // No GET interceptor: a GET would fail with a nock "no match" error instead.
    await expect(s.imds.get('instance-id', signal)).rejects.toMatchObject({ code: 'ERR_METADATA_HTTP', message: 'IMDSv2 token PUT answered HTTP 403', status: 403 });
    s.close();
  });

  test('with allowImdsV1 a failed token PUT falls back to IMDSv1 GETs, said once', async () => {
    const s = session({ plainGets: 'token-fails', tokenTimeoutMs: 30 });
    nock(BASE).put('/latest/api/token').reply(noReply);
    const v1 = nock(BASE, { badheaders: ['x-aws-ec2-metadata-token'] }).get(`${META}instance-id`).times(3).reply(200, 'i-1');
    for (let i = 0; i < 3; i += 1) await expect(s.imds.get('instance-id', signal)).resolves.toBe('i-1');
    expect(v1.isDone()).toBe(true);
    expect(s.lines.filter((line) => line.msg.includes('falling back to IMDSv1'))).toHaveLength(1);
    s.close();
  });

  test('after the IMDSv1 fallback, a token that can be had again is used again', async () => {
    const s = session({ plainGets: 'token-fails' });
    nock(BASE).put('/latest/api/token').reply(500, 'oops').put('/latest/api/token').reply(200, 'back');
    nock(BASE, { badheaders: ['x-aws-ec2-metadata-token'] }).get(`${META}instance-id`).times(2).reply(200, 'v1');
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('v1');
    s.advance(60_000);
    let tokenObtained!: () => void;
    const backgroundToken = new Promise<void>((resolve) => (tokenObtained = resolve));
    // This read starts the token request in the background and still goes out as IMDSv1.
    s.imds.attach({ log: silentLogger(), onRead: (read) => read.source === 'token' && read.ok && tokenObtained() });
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('v1');
    await backgroundToken;
    nock(BASE).get(`${META}instance-id`).matchHeader('x-aws-ec2-metadata-token', 'back').reply(200, 'v2');
    await expect(s.imds.get('instance-id', signal)).resolves.toBe('v2');
    expect(s.lines.some((line) => line.msg.includes('using IMDSv2 again'))).toBe(true);
    s.close();
  });
});

describe('AWS payload parsing', () => {
  test('maintenance dates in the "21 Jan 2019 09:00:43 GMT" form parse as UTC, and impossible dates do not', () => {
    expect(parseAwsEventDate('21 Jan 2019 09:00:43 GMT')?.toISOString()).toBe('2019-01-21T09:00:43.000Z');
    expect(parseAwsEventDate('1 Mar 2026 00:00:00 GMT')?.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(parseAwsEventDate('31 Feb 2026 09:00:00 GMT')).toBeUndefined();
    expect(parseAwsEventDate('21 Foo 2019 09:00:43 GMT')).toBeUndefined();
    expect(parseAwsEventDate('2019-01-21T09:00:43Z')).toBeUndefined();
  });

  test('a maintenance list marks canceled and completed events as ended', () => {
    const events = parseMaintenance(
      JSON.stringify([
        { NotBefore: '21 Jan 2019 09:00:43 GMT', EventId: 'a', State: 'active', Code: 'system-reboot' },
        { NotBefore: '21 Jan 2019 09:00:43 GMT', EventId: 'b', State: 'canceled' },
        { NotBefore: '21 Jan 2019 09:00:43 GMT', EventId: 'c', State: 'completed' },
      ]),
    );
    expect(events.map((event) => [event.eventId, event.ended])).toEqual([
      ['a', false],
      ['b', true],
      ['c', true],
    ]);
  });
});
