import nock from 'nock';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALIBABA_TERMINATION_TIME, AlibabaProvider } from '../../src/providers/alibaba/provider.js';
import { parseTerminationTime } from '../../src/providers/metadata/termination-time.js';
import type { ProviderEvent } from '../../src/providers/types.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { noReply } from '../helpers/no-reply.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';
import { nockOnly } from '../helpers/nock-only.js';

// A name that never resolves: with net connect disabled nothing can leave the machine.
const BASE = 'http://alibaba-meta.test';
const TOKEN = '/latest/api/token';
const TERMINATION = '/latest/meta-data/instance/spot/termination-time';
const TOKEN_HEADER = 'x-aliyun-ecs-metadata-token';
const TTL_HEADER = 'x-aliyun-ecs-metadata-token-ttl-seconds';

/** A provider on a fake clock: its intervals, backoffs and token lifetimes take no real time. */
function provider(alibaba = { hardened: true, tokenTtlSeconds: 21600 }, overrides: Parameters<typeof testProviderOptions>[1] = {}) {
  return new AlibabaProvider(testProviderOptions(BASE, { alibaba, clock: new FakeClock(), ...overrides }));
}

/** Instance facts, answered whatever token is sent (they are not what these tests look at). */
function serveFacts() {
  const facts = { 'instance-id': 'i-bp1abc', 'instance/instance-type': 'ecs.gn7i', 'zone-id': 'cn-hangzhou-h', 'region-id': 'cn-hangzhou' };
  for (const [item, value] of Object.entries(facts)) nock(BASE).persist().get(`/latest/meta-data/${item}`).reply(200, value);
}

nockOnly();

describe('Alibaba Cloud spot provider (protocol edge cases)', () => {
  test('404 and an empty body are no notice; a UTC time is a terminate notice with that deadline', async () => {
    serveFacts();
    const token = nock(BASE).put(TOKEN).matchHeader(TTL_HEADER, '21600').reply(200, 'tok-1');
    const scope = nock(BASE).matchHeader(TOKEN_HEADER, 'tok-1');
    scope.get(TERMINATION).reply(404, 'Not Found');
    scope.get(TERMINATION).reply(200, '');
    scope.get(TERMINATION).times(100).reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    const notice = noticeOf((await collectEvents(provider(), recorder, 1))[0]);
    expect(notice).toMatchObject({ provider: 'alibaba', kind: 'terminate', raw: '2033-01-05T18:02:00Z' });
    expect(notice.deadline?.toISOString()).toBe('2033-01-05T18:02:00.000Z');
    expect(notice.id).toMatch(/^alibaba-terminate-[0-9a-f]{16}$/);
    expect(notice.instance).toEqual({ id: 'i-bp1abc', type: 'ecs.gn7i', zone: 'cn-hangzhou-h', region: 'cn-hangzhou' });
    const polls = recorder.reads.filter((read) => read.source === 'instance/spot/termination-time');
    expect(polls.slice(0, 3).map((read) => read.status)).toEqual([404, 200, 200]);
    // One token for every request: it is reused, not fetched per GET.
    expect(token.isDone()).toBe(true);
    expect(recorder.reads.filter((read) => read.source === 'token')).toHaveLength(1);
  });

  test('a 401 on a GET brings a fresh token and one retry', async () => {
    serveFacts();
    let issued = 0;
    nock(BASE)
      .put(TOKEN)
      .times(2)
      .reply(200, () => `tok-${++issued}`);
    nock(BASE).get(TERMINATION).matchHeader(TOKEN_HEADER, 'tok-1').reply(401, 'Unauthorized');
    nock(BASE).get(TERMINATION).matchHeader(TOKEN_HEADER, 'tok-2').times(100).reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    expect(issued).toBe(2);
    // The retried read is the one reported: the 401 never reaches health as a failure.
    expect(recorder.reads.filter((read) => !read.ok)).toEqual([]);
  });

  test('a token PUT answered 404 (no hardened mode here) falls back to plain GETs', async () => {
    serveFacts();
    nock(BASE).put(TOKEN).reply(404, 'Not Found');
    nock(BASE, { badheaders: [TOKEN_HEADER] })
      .get(TERMINATION)
      .times(100)
      .reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    expect(recorder.logs.some((line) => String(line.msg).includes('offers no hardened-mode token'))).toBe(true);
    expect(recorder.reads.filter((read) => read.source === 'token')).toHaveLength(1);
  });

  test('after a 403 token PUT, a refused plain GET asks for a token again', async () => {
    serveFacts();
    nock(BASE).put(TOKEN).reply(403, 'Forbidden').put(TOKEN).reply(200, 'tok-late');
    nock(BASE, { badheaders: [TOKEN_HEADER] }).get(TERMINATION).reply(404).get(TERMINATION).reply(401);
    nock(BASE).get(TERMINATION).matchHeader(TOKEN_HEADER, 'tok-late').times(100).reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    await collectEvents(provider(), recorder, 1);
    expect(recorder.reads.filter((read) => read.source === 'token').map((read) => read.status)).toEqual([403, 200]);
  });

  test('the token is renewed before its TTL runs out', async () => {
    serveFacts();
    let issued = 0;
    nock(BASE)
      .put(TOKEN)
      .matchHeader(TTL_HEADER, '1')
      .times(10)
      .reply(200, () => `tok-${++issued}`);
    const scope = nock(BASE).get(TERMINATION).times(60).reply(404);
    nock(BASE).get(TERMINATION).times(100).reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    await collectEvents(provider({ hardened: true, tokenTtlSeconds: 1 }), recorder, 1);
    expect(scope.isDone()).toBe(true);
    // 60 polls at 20 ms take well over one 0.8 s refresh period (on the fake clock).
    expect(issued).toBeGreaterThanOrEqual(2);
    expect(recorder.reads.filter((read) => !read.ok)).toEqual([]);
  });

  test('hardened: false sends plain GETs, and a refusal names the setting to change', async () => {
    serveFacts();
    nock(BASE, { badheaders: [TOKEN_HEADER] }).get(TERMINATION).reply(401).get(TERMINATION).times(100).reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    await collectEvents(provider({ hardened: false, tokenTtlSeconds: 60 }), recorder, 1);
    expect(recorder.reads.find((read) => !read.ok)?.error).toMatch(/set alibaba\.hardened: true/);
    expect(recorder.reads.some((read) => read.source === 'token')).toBe(false);
  });

  test('a token PUT that times out is reported with its time limit and retried', async () => {
    serveFacts();
    nock(BASE).put(TOKEN).reply(noReply);
    nock(BASE).put(TOKEN).reply(200, 'tok-2');
    nock(BASE).get(TERMINATION).matchHeader(TOKEN_HEADER, 'tok-2').times(100).reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    await collectEvents(provider(undefined, { requestTimeoutMs: 100 }), recorder, 1);
    const failed = recorder.reads.find((read) => read.source === 'token' && !read.ok);
    expect(failed?.error).toMatch(/no answer within 100 ms/);
  });

  test('a value that is not a time is logged once and is not a notice', async () => {
    serveFacts();
    nock(BASE).put(TOKEN).reply(200, 'tok');
    nock(BASE).get(TERMINATION).times(5).reply(200, 'not-yet').get(TERMINATION).times(100).reply(200, '2033-01-05T18:02:00Z');
    const recorder = watchRecorder();
    const events = await collectEvents(provider(), recorder, 1);
    expect(noticeOf(events[0]).raw).toBe('2033-01-05T18:02:00Z');
    expect(recorder.logs.filter((line) => String(line.msg).includes('"not-yet"'))).toHaveLength(1);
  });
});

describe('Alibaba instance facts on a notice', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  test('a facts read that hangs does not hold the notice back, which carries the facts known by then', async () => {
    // Loopback is the only place a test may connect to; nock would otherwise refuse it.
    nock.enableNetConnect('127.0.0.1');
    const answers: Record<string, string> = {
      '/latest/meta-data/instance-id': 'i-bp1abc',
      '/latest/meta-data/zone-id': 'cn-hangzhou-h',
      '/latest/meta-data/region-id': 'cn-hangzhou',
      [TERMINATION]: '2033-01-05T18:02:00Z',
    };
    const held: http.ServerResponse[] = [];
    server = http.createServer((request, response) => {
      if (request.url === TOKEN) return void response.end('tok-1');
      // The instance type is never answered while the test runs.
      if (request.url === '/latest/meta-data/instance/instance-type') return void held.push(response);
      const answer = answers[request.url ?? ''];
      response.writeHead(answer === undefined ? 404 : 200).end(answer ?? 'Not Found');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const alibaba = new AlibabaProvider(testProviderOptions(`http://127.0.0.1:${port}`, { requestTimeoutMs: 60_000, clock: new FakeClock() }));
    const recorder = watchRecorder();
    // Only a safety net: the notice must come while the watch still runs, long before this.
    const limit = setTimeout(() => recorder.abort(), 10_000);
    let arrival: { event: ProviderEvent; watchStopped: boolean; typeStillHeld: boolean } | undefined;
    try {
      for await (const event of alibaba.watch(recorder.context)) {
        arrival = { event, watchStopped: recorder.context.signal.aborted, typeStillHeld: held.length === 1 && !held[0]!.writableEnded };
        break;
      }
    } finally {
      clearTimeout(limit);
      recorder.abort();
    }
    expect(arrival).toMatchObject({ watchStopped: false, typeStillHeld: true });
    const notice = noticeOf(arrival?.event);
    expect(notice.instance).toEqual({ id: 'i-bp1abc', zone: 'cn-hangzhou-h', region: 'cn-hangzhou' });
    expect(notice.raw).toBe('2033-01-05T18:02:00Z');
  });
});

describe('parseTerminationTime', () => {
  test('reads a UTC time and treats nothing, blanks and non-times as no notice', () => {
    expect(parseTerminationTime(ALIBABA_TERMINATION_TIME, null)).toBeUndefined();
    expect(parseTerminationTime(ALIBABA_TERMINATION_TIME, ' \n')).toBeUndefined();
    expect(parseTerminationTime(ALIBABA_TERMINATION_TIME, '2015-01-05T18:02:00Z\n')).toEqual({ text: '2015-01-05T18:02:00Z', time: new Date('2015-01-05T18:02:00Z') });
    expect(parseTerminationTime(ALIBABA_TERMINATION_TIME, 'soon')).toEqual({ text: 'soon', time: undefined });
  });
});
