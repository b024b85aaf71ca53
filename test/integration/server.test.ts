import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { compileConfig } from '../helpers/config.js';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { createLogger, silentLogger, type Logger } from '../../src/lib/log.js';
import type { Notice, SourceName } from '../../src/notice/notice.js';
import { serveDaemon, type RunningServer } from '../../src/observe/local-server.js';
import { NoticeBoard } from '../../src/observe/notice-board.js';
import { NoticeFile } from '../../src/observe/notice-file.js';
import { MAX_WAITING } from '../../src/observe/notice-route.js';
import { scriptedNotice } from '../helpers/scripted-notice.js';
import { ScriptedProvider } from '../helpers/scripted-provider.js';
import { until } from '../helpers/until.js';

const cleanups: Array<() => Promise<void> | void> = [];
/** Held requests are released first, so plans can end and daemons stop at once. */
const releases: Array<() => void> = [];
afterEach(async () => {
  for (const release of releases.splice(0)) release();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An AWS terminate notice as `GET /v1/notice` and the notice file show it. */
function noticeShown(notice: Notice): Record<string, unknown> {
  return {
    id: notice.id,
    provider: 'aws',
    kind: 'terminate',
    deadline: notice.deadline!.toISOString(),
    secondsLeft: expect.any(Number),
    detectedAt: notice.detectedAt.toISOString(),
    advisory: false,
  };
}

/** A drain endpoint that holds every request until the test releases it: a plan that is still running. */
async function startGate(): Promise<{ url: string; release(): void; waiting(): number }> {
  const held: ServerResponse[] = [];
  let open = false;
  const server: Server = createServer((request, response) => {
    request.resume();
    if (open) response.writeHead(204).end();
    else held.push(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const release = () => held.splice(0).forEach((response) => response.writeHead(204).end());
  releases.push(() => {
    open = true;
    release();
  });
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/drain`, release, waiting: () => held.length };
}

interface Stack {
  daemon: Daemon;
  provider: ScriptedProvider;
  server: RunningServer;
  get(path: string, init?: RequestInit): Promise<{ status: number; body: any; text: string; type: string | null }>;
}

async function startStack(raw: Record<string, unknown>, options: { now?: () => number; log?: Logger; sources?: SourceName[] } = {}): Promise<Stack> {
  const stateDir = mkdtempSync(join(tmpdir(), 'preemptd-server-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = compileConfig({ provider: 'aws', stateDir, server: { listen: '127.0.0.1:0' }, ...raw });
  const provider = new ScriptedProvider();
  if (options.sources) provider.sources = options.sources;
  const log = options.log ?? silentLogger();
  const daemon = createDaemon({ config, log, provider, ...(options.now ? { now: options.now } : {}) });
  const server = await serveDaemon(daemon, config, log);
  if (!server) throw new Error('the server did not start');
  const running = daemon.run();
  cleanups.push(async () => {
    await daemon.stop();
    await running;
    await server.close();
  });
  await until(() => provider.watching);
  return {
    daemon,
    provider,
    server,
    async get(path, init) {
      const response = await fetch(server.url + path, init);
      const text = await response.text();
      const type = response.headers.get('content-type');
      return { status: response.status, text, type, body: type?.startsWith('application/json') && text ? JSON.parse(text) : undefined };
    },
  };
}

function planFinished(daemon: Daemon): Promise<void> {
  return new Promise((resolve) => daemon.once('planFinished', () => resolve()));
}

describe('/healthz', () => {
  test('answers 200 with the provider, last successful read, consecutive errors and notice state while the watch reads', async () => {
    const stack = await startStack({});
    stack.provider.read();
    stack.provider.read({ ok: false, error: 'no complete answer within 2000 ms' });
    stack.provider.read({ ok: false, status: 500, error: 'HTTP 500' });
    const { status, body } = await stack.get('/healthz');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', state: 'watching', provider: 'aws', consecutiveErrors: 2, notice: { state: 'idle', active: [], ready: true } });
    expect(Date.parse(body.lastSuccessfulRead)).toBeLessThanOrEqual(Date.parse(body.lastRead));
  });

  test('reports each notice source on its own line: the cloud\'s, and the Node\'s beside it', async () => {
    const stack = await startStack({}, { sources: ['aws', 'kubernetes'] });
    stack.provider.read({ provider: 'aws' });
    stack.provider.read({ provider: 'kubernetes', ok: false, error: 'the Kubernetes API is unreachable (ECONNREFUSED)' });
    stack.provider.read({ provider: 'aws' });
    const { status, body } = await stack.get('/healthz');
    expect(status).toBe(200);
    // The cloud answering last does not hide the Node's failing source.
    expect(body).toMatchObject({ status: 'ok', consecutiveErrors: 1 });
    expect(body.sources).toEqual([
      { provider: 'aws', status: 'ok', lastSuccessfulRead: body.lastSuccessfulRead, lastRead: body.lastRead, consecutiveErrors: 0 },
      { provider: 'kubernetes', status: 'degraded', lastSuccessfulRead: null, lastRead: expect.any(String), consecutiveErrors: 1 },
    ]);
  });

  test('goes 503 when the watch loop has stalled: a provider whose watch never reads', async () => {
    let clock = Date.now();
    const stack = await startStack({}, { now: () => clock });
    const fresh = await stack.get('/healthz');
    expect(fresh.status).toBe(200);
    expect(fresh.body.lastRead).toBeNull();

    clock += fresh.body.stallThresholdMs + 1;
    const stalled = await stack.get('/healthz');
    expect(stalled.status).toBe(503);
    expect(stalled.body).toMatchObject({ status: 'stalled', state: 'watching', lastSuccessfulRead: null });
  });

  test('comes back to 200 once the watch loop reads again', async () => {
    let clock = Date.now();
    const stack = await startStack({}, { now: () => clock });
    stack.provider.read();
    clock += 60 * 60_000;
    expect((await stack.get('/healthz')).status).toBe(503);
    stack.provider.read();
    expect((await stack.get('/healthz')).status).toBe(200);
  });
});

describe('/readyz', () => {
  test('turns 503 as soon as a terminate notice is handled, and stays so after the plan until the deadline', async () => {
    const gate = await startGate();
    const stack = await startStack({ steps: [{ name: 'drain', http: { url: gate.url, method: 'POST' } }] });
    expect((await stack.get('/readyz')).status).toBe(200);

    const notice = scriptedNotice('terminate', 120_000);
    const finished = planFinished(stack.daemon);
    stack.provider.notice(notice);
    await until(() => gate.waiting() === 1);
    const during = await stack.get('/readyz');
    expect(during.status).toBe(503);
    expect(during.body.reason).toContain(notice.id);

    gate.release();
    await finished;
    // The machine is still going away: traffic must stay off.
    expect((await stack.get('/readyz')).status).toBe(503);
  });

  test('a rebalance notice leaves it at 200 by default', async () => {
    const gate = await startGate();
    // A drain (destructive) runs for an advisory rebalance only when on: lists it.
    const stack = await startStack({ steps: [{ name: 'drain', on: ['rebalance'], http: { url: gate.url, method: 'POST' } }] });
    stack.provider.notice(scriptedNotice('rebalance', null));
    await until(() => gate.waiting() === 1);
    expect((await stack.get('/readyz')).status).toBe(200);
    expect((await stack.get('/v1/status')).body.notices[0].state).toBe('running');
  });

  test('readiness.notReadyOn chooses the kinds; a notice without deadline holds it down only while its plan runs', async () => {
    const gate = await startGate();
    const stack = await startStack({
      readiness: { notReadyOn: ['rebalance'] },
      steps: [{ name: 'drain', on: ['rebalance', 'terminate'], http: { url: gate.url, method: 'POST' } }],
    });
    const finished = planFinished(stack.daemon);
    stack.provider.notice(scriptedNotice('rebalance', null));
    await until(() => gate.waiting() === 1);
    expect((await stack.get('/readyz')).status).toBe(503);
    gate.release();
    await finished;
    expect((await stack.get('/readyz')).status).toBe(200);

    const second = planFinished(stack.daemon);
    stack.provider.notice(scriptedNotice('terminate', 120_000));
    await until(() => gate.waiting() === 1);
    gate.release();
    await second;
    expect((await stack.get('/readyz')).status).toBe(200);
  });

  test('a notice the cloud withdraws gives readiness back', async () => {
    const stack = await startStack({});
    const notice = scriptedNotice('maintenance', 3 * 24 * 3600_000);
    const finished = planFinished(stack.daemon);
    stack.provider.notice(notice);
    await finished;
    expect((await stack.get('/readyz')).status).toBe(503);
    const withdrawn = new Promise((resolve) => stack.daemon.once('withdrawn', resolve));
    stack.provider.emit({ type: 'withdrawn', noticeId: notice.id, reason: 'AWS maintenance event canceled' });
    await withdrawn;
    expect((await stack.get('/readyz')).status).toBe(200);
    expect((await stack.get('/v1/status')).body.notices[0].withdrawn).toBe('AWS maintenance event canceled');
  });
});

describe('/v1/status', () => {
  test('shows the current notice and plan progress: finished, running and pending steps', async () => {
    const gate = await startGate();
    const stack = await startStack({
      steps: [
        { name: 'drain', http: { url: gate.url, method: 'POST' } },
        { name: 'after-drain', after: ['drain'], http: { url: gate.url, method: 'POST' } },
        { name: 'quick', signal: { pidfile: '/nonexistent/preemptd-test.pid' } },
      ],
    });
    const notice = scriptedNotice('terminate', 120_000);
    const quickDone = new Promise<void>((resolve) => stack.daemon.on('stepFinished', (_notice, summary) => summary.name === 'quick' && resolve()));
    stack.provider.notice(notice);
    await until(() => gate.waiting() === 1);
    await quickDone;
    const status = await stack.get('/v1/status');
    const [current] = status.body.notices;
    expect(current.notice.id).toBe(notice.id);
    expect(current.state).toBe('running');
    expect(current.planDeadline).not.toBeNull();
    const states = Object.fromEntries(current.steps.map((step: any) => [step.name, step.state]));
    expect(states).toEqual({ drain: 'running', 'after-drain': 'pending', quick: 'ok' });
    expect(status.body.readiness.ready).toBe(false);
  });
});

describe('the server', () => {
  test('serves Prometheus text on /metrics, 404 for unknown paths, 405 for other methods, no body for HEAD', async () => {
    const stack = await startStack({});
    const metrics = await stack.get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    expect(metrics.text).toContain('# TYPE preemptd_notices_total counter');

    const missing = await stack.get('/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.endpoints).toEqual(['/healthz', '/readyz', '/metrics', '/v1/status', '/v1/notice']);
    const post = await fetch(`${stack.server.url}/readyz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await stack.get('/healthz', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  test('listens on loopback by default', () => {
    const config = compileConfig({});
    expect(config.server).toEqual({ enabled: true, host: '127.0.0.1', port: 9464 });
  });

  test('when its address is taken the agent runs on without it, saying why', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as AddressInfo).port;
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({
      destination: new Writable({
        write(chunk, _encoding, done) {
          lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
          done();
        },
      }),
    });
    const config = compileConfig({ server: { listen: `127.0.0.1:${port}` } });
    const daemon = createDaemon({ config, log, provider: new ScriptedProvider() });
    expect(await serveDaemon(daemon, config, log)).toBeUndefined();
    const line = lines.find((candidate) => candidate.level === 'error');
    expect(line?.msg).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`));
    expect(line?.err).toMatchObject({ type: 'PreemptdError', code: 'ERR_LISTEN' });
  });
});

describe('/v1/notice', () => {
  const drainStep = (url: string) => ({ steps: [{ name: 'drain', http: { url, method: 'POST' } }] });

  test('answers 204 when there is no notice, 200 with deadline and secondsLeft while one is handled, 204 again once its plan ends', async () => {
    const gate = await startGate();
    const stack = await startStack(drainStep(gate.url));
    const none = await stack.get('/v1/notice');
    expect(none.status).toBe(204);
    expect(none.text).toBe('');

    const notice = scriptedNotice('terminate', 120_000);
    const finished = planFinished(stack.daemon);
    stack.provider.notice(notice);
    await until(() => gate.waiting() === 1);
    const during = await stack.get('/v1/notice');
    expect(during.status).toBe(200);
    expect(during.body).toEqual(noticeShown(notice));
    expect(during.body.secondsLeft).toBeGreaterThan(100);
    expect(during.body.secondsLeft).toBeLessThanOrEqual(120);

    gate.release();
    await finished;
    expect((await stack.get('/v1/notice')).status).toBe(204);
  });

  test('a waiting request is answered the moment a notice is raised; one for another kind is not', async () => {
    const gate = await startGate();
    const stack = await startStack(drainStep(gate.url));
    const waiting = stack.get('/v1/notice?wait=5m');
    const otherKind = stack.get('/v1/notice?wait=1s&kind=preempt,rebalance');
    // Both requests have reached the server before the notice comes.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const notice = scriptedNotice('terminate', 120_000);
    stack.provider.notice(notice);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: notice.id, kind: 'terminate' });
    expect((await otherKind).status).toBe(204);
    expect((await stack.get('/v1/notice?kind=terminate')).body).toMatchObject({ id: notice.id });
  });

  test('a request target that is no URL gets a 404, and the server answers on', async () => {
    const stack = await startStack({});
    const { port } = new URL(stack.server.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.end('GET http://[bad/v1/notice?wait=1s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let answer = '';
    for await (const chunk of socket) answer += String(chunk);
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    expect((await stack.get('/healthz')).status).toBe(200);
  });

  test('a bad wait or kind is a 400 naming what was expected', async () => {
    const stack = await startStack({});
    const bare = await stack.get('/v1/notice?wait=30');
    expect(bare.status).toBe(400);
    expect(bare.body.error).toBe('wait: got "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, 30h); only 0 stands alone (at most 5m0s)');
    const long = await stack.get('/v1/notice?wait=10m');
    expect(long.status).toBe(400);
    expect(long.body.error).toBe('wait: got 10m: expected at most 5m0s; ask again to wait longer');
    const kind = await stack.get('/v1/notice?kind=spot');
    expect(kind.status).toBe(400);
    expect(kind.body.error).toMatch(/^kind: got "spot": expected one of terminate, stop, /);
  });

  test('waiting requests are answered 503 when the server closes, and are held below the connection cap', async () => {
    const stack = await startStack({});
    const waiting = Array.from({ length: MAX_WAITING }, () => stack.get('/v1/notice?wait=5m'));
    await until(async () => (await stack.get('/v1/notice?wait=1ms')).status === 503);
    const over = await stack.get('/v1/notice?wait=5m');
    expect(over.body.error).toBe(`${MAX_WAITING} requests are waiting already: ask again without wait=, or later`);
    // A probe still gets in past the waiting requests.
    expect((await stack.get('/healthz')).status).toBe(200);
    await stack.server.close();
    const answers = await Promise.all(waiting);
    expect(answers.map((answer) => answer.status)).toEqual(Array(MAX_WAITING).fill(503));
    expect(answers[0]!.body.error).toBe('the agent is stopping');
  });
});

describe('the notice file', () => {
  function withNoticeFile(stack: Stack, path: string): NoticeFile {
    const board = new NoticeBoard(stack.daemon);
    const file = new NoticeFile(board, path, silentLogger());
    cleanups.push(async () => {
      await file.close();
      board.close();
    });
    return file;
  }

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'preemptd-notice-file-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  test('holds the notice while it is handled (mode 0644), takes a moved deadline, and is removed when the notice is withdrawn', async () => {
    const gate = await startGate();
    const stack = await startStack({ steps: [{ name: 'drain', http: { url: gate.url, method: 'POST' } }] });
    const path = join(tempDir(), 'run', 'notice.json');
    const file = withNoticeFile(stack, path);
    const notice = scriptedNotice('terminate', 120_000);
    stack.provider.notice(notice);
    await until(() => existsSync(path));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(noticeShown(notice));
    expect(statSync(path).mode & 0o777).toBe(0o644);

    const moved = { ...notice, deadline: new Date(notice.deadline!.getTime() + 60_000) };
    stack.provider.notice(moved);
    await until(() => existsSync(path) && JSON.parse(readFileSync(path, 'utf8')).deadline === moved.deadline.toISOString());

    stack.provider.emit({ type: 'withdrawn', noticeId: notice.id, reason: 'canceled' });
    await until(() => !existsSync(path));
    await file.settled();
    expect(readdirSync(dirname(path))).toEqual([]);
  });

  test('is removed when the plan ends; a stale file is removed at start; a link at its path is replaced, never followed', async () => {
    const dir = tempDir();
    const path = join(dir, 'notice.json');
    const target = join(dir, 'elsewhere.txt');
    writeFileSync(target, 'untouched\n');
    writeFileSync(path, '{"stale": true}\n');
    const stack = await startStack({});
    const file = withNoticeFile(stack, path);
    await file.settled();
    expect(existsSync(path)).toBe(false);

    symlinkSync(target, path);
    const written = new Promise<void>((resolve) => stack.daemon.once('notice', () => void file.settled().then(resolve)));
    const finished = planFinished(stack.daemon);
    stack.provider.notice(scriptedNotice('preempt', 30_000));
    await written;
    expect(lstatSync(path).isSymbolicLink()).toBe(false);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ kind: 'preempt' });
    expect(readFileSync(target, 'utf8')).toBe('untouched\n');
    await finished;
    await until(() => !existsSync(path));
  });
});
