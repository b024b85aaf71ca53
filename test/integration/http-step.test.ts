import { createServer, type IncomingMessage, type Server } from 'node:http';
import { checkCondition, type UntilCondition } from '../../src/steps/http/condition.js';
import { StepFailure } from '../../src/lib/errors.js';
import { httpStep } from '../../src/steps/http/step.js';
import { TestResources } from '../helpers/resources.js';
import { testNotice, testStepContext } from '../helpers/step-context.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * A service being drained: POST /drain starts it; each GET /status reports one request fewer
 * in flight, from `inFlight` down to 0 (or never, with `stuck`). /broken answers 503, /slow
 * never answers, /drain-and-exit closes the server after answering.
 */
async function startService(options: { inFlight?: number; stuck?: boolean } = {}) {
  let inFlight = options.inFlight ?? 3;
  const seen: Seen[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      seen.push({ method: request.method!, url: request.url!, headers: request.headers, body });
      if (request.url === '/status') {
        const now = inFlight;
        if (!options.stuck && inFlight > 0) inFlight -= 1;
        response.setHeader('content-type', 'application/json');
        return response.end(JSON.stringify({ draining: true, in_flight: now }));
      }
      if (request.url === '/broken') return response.writeHead(503).end('overloaded');
      if (request.url === '/slow') return;
      response.writeHead(202).end('draining');
      if (request.url === '/drain-and-exit') server.close();
    });
  });
  const { base, port } = await resources.listen(server);
  return { base, seen, port, server };
}

const resources = new TestResources();

function run(raw: Record<string, unknown>, timeoutMs = 10_000) {
  const step = testStepContext({
    timeoutMs,
    notice: testNotice({ id: 'aws-terminate-feedbeef', kind: 'terminate', instance: { id: 'i-0drain' } }),
  });
  resources.defer(() => step.dispose());
  return { step, result: httpStep.run(httpStep.schema.parse(raw), step.context) };
}

async function failure(promise: Promise<unknown>): Promise<StepFailure> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(StepFailure);
  return error as StepFailure;
}

function problems(raw: Record<string, unknown>): string {
  const result = httpStep.schema.safeParse(raw);
  if (result.success) throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
  return result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('\n');
}

describe('http step against a real loopback service', () => {
  test('POST /drain, then polls GET /status until in_flight equals 0', async () => {
    const service = await startService({ inFlight: 3 });
    const { result, step } = run({
      url: `${service.base}/drain`,
      until: { url: `${service.base}/status`, interval: '20ms', json: { path: 'in_flight', equals: 0 } },
    });
    expect(await result).toEqual({
      request: `POST 127.0.0.1:${service.port}/drain`,
      status: 202,
      polls: 4,
      until: 'in_flight = 0',
      seen: 'in_flight = 0',
      outcome: 'ok',
    });
    expect(service.seen.map((request) => `${request.method} ${request.url}`)).toEqual([
      'POST /drain',
      'GET /status',
      'GET /status',
      'GET /status',
      'GET /status',
    ]);
    expect(step.progress.at(-1)).toEqual({ polls: 3, seen: 'in_flight = 1' });
  });

  test('string bodies and header values are filled from the notice; objects go as JSON', async () => {
    const service = await startService();
    await run({
      url: `${service.base}/drain`,
      headers: { 'x-notice': '{{notice.id}}', authorization: 'Bearer plain-token' },
      body: 'reason={{notice.kind}}&instance={{notice.instance.id}}&host={{host.hostname}}',
    }).result;
    await run({ url: `${service.base}/drain`, method: 'put', body: { reason: 'spot', graceSeconds: 90 } }).result;
    const [templated, json] = service.seen;
    expect(templated!.headers['x-notice']).toBe('aws-terminate-feedbeef');
    expect(templated!.headers.authorization).toBe('Bearer plain-token');
    expect(templated!.body).toMatch(/^reason=terminate&instance=i-0drain&host=.+$/);
    expect(json!.method).toBe('PUT');
    expect(json!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(json!.body)).toEqual({ reason: 'spot', graceSeconds: 90 });
  });

  test('a status outside expectStatus fails the step with the status and what was expected', async () => {
    const service = await startService();
    const failed = await failure(run({ url: `${service.base}/broken` }).result);
    expect(failed.message).toBe(`POST 127.0.0.1:${service.port}/broken answered HTTP 503: expected 2xx`);
    expect(failed.detail).toMatchObject({ status: 503, body: '"overloaded"' });
    expect(await run({ url: `${service.base}/broken`, expectStatus: ['2xx', 503] }).result).toMatchObject({
      status: 503,
      outcome: 'ok',
    });
  });

  test('connection refused (the service already stopped) is ok by default and a failure with onRefused fail', async () => {
    const service = await startService();
    await new Promise((resolve) => service.server.close(resolve));
    const url = `${service.base}/drain`;
    expect(await run({ url }).result).toEqual({
      request: `POST 127.0.0.1:${service.port}/drain`,
      outcome: 'connection_refused',
    });
    const failed = await failure(run({ url, onRefused: 'fail' }).result);
    expect(failed.message).toBe(`POST 127.0.0.1:${service.port}/drain: connection refused`);
    expect(failed.detail).toMatchObject({ outcome: 'connection_refused' });
  });

  test('a service that exits while being polled ends the drain as connection_refused', async () => {
    const service = await startService({ stuck: true });
    const detail = await run({
      url: `${service.base}/drain-and-exit`,
      until: { url: `${service.base}/status`, interval: '20ms', json: { path: 'in_flight', equals: 0 } },
    }).result;
    expect(detail).toMatchObject({ status: 202, polls: expect.any(Number), outcome: 'connection_refused' });
  });

  test('an until that never holds ends at the step deadline with the last value seen', async () => {
    const service = await startService({ inFlight: 5, stuck: true });
    const { result, step } = run(
      { url: `${service.base}/drain`, until: { url: `${service.base}/status`, interval: '50ms', json: { path: 'in_flight', lessThan: 1 } } },
      500,
    );
    const failed = await failure(result);
    expect(failed.message).toMatch(/^until in_flight < 1 never held: last saw in_flight = 5 after \d+ polls$/);
    expect(step.context.signal.aborted).toBe(true);
    expect(step.progress.at(-1)).toMatchObject({ seen: 'in_flight = 5' });
  });

  test('a request with no answer fails after its own timeout', async () => {
    const service = await startService();
    const failed = await failure(run({ url: `${service.base}/slow`, timeout: '200ms' }).result);
    expect(failed.message).toBe(`POST 127.0.0.1:${service.port}/slow failed: no answer within 200ms`);
  });
});

describe('until conditions', () => {
  const parse = (until: Record<string, unknown>): UntilCondition =>
    httpStep.schema.parse({ url: 'http://127.0.0.1:1/drain', until }).until!.condition;
  const response = (status: number, body: string) => ({ status, body });

  test('status, body and json conditions hold or not, and say what they saw', () => {
    expect(checkCondition(parse({ status: [404, '5xx'] }), response(503, ''))).toEqual({ holds: true, seen: 'HTTP 503' });
    expect(checkCondition(parse({ status: 404 }), response(200, '')).holds).toBe(false);
    expect(checkCondition(parse({ bodyEquals: 'drained' }), response(200, 'drained')).holds).toBe(true);
    expect(checkCondition(parse({ bodyContains: 'idle' }), response(200, 'state: busy'))).toEqual({
      holds: false,
      seen: 'body "state: busy"',
    });
    expect(checkCondition(parse({ bodyMatches: '^queue=0$' }), response(200, 'queue=0')).holds).toBe(true);
    const nested = parse({ json: { path: 'stats.workers.1.busy', notEquals: true } });
    expect(checkCondition(nested, response(200, '{"stats":{"workers":[{"busy":true},{"busy":false}]}}'))).toEqual({
      holds: true,
      seen: 'stats.workers.1.busy = false',
    });
    expect(checkCondition(parse({ json: { path: 'queue', greaterThan: 2 } }), response(200, '{}'))).toEqual({
      holds: false,
      seen: 'queue = missing',
    });
    expect(checkCondition(parse({ json: { path: 'queue', equals: 0 } }), response(502, '<html>')).seen).toBe(
      'HTTP 502 with a body that is not JSON: "<html>"',
    );
  });
});

describe('http step options', () => {
  test('defaults: POST, 2xx, 5s per request, refused is ok, polls GET the same URL every 1s', () => {
    const options = httpStep.schema.parse({
      url: 'http://127.0.0.1:8080/drain',
      headers: { authorization: 'Bearer x' },
      until: { bodyContains: 'done' },
    });
    expect(options).toMatchObject({
      request: { method: 'POST', url: 'http://127.0.0.1:8080/drain' },
      expectStatus: [{ min: 200, max: 299, label: '2xx' }],
      timeoutMs: 5000,
      onRefused: 'ok',
      until: {
        request: { method: 'GET', url: 'http://127.0.0.1:8080/drain', headers: { authorization: 'Bearer x' } },
        intervalMs: 1000,
      },
    });
    expect(httpStep.describe(options)).toBe(
      'POST 127.0.0.1:8080/drain, then GET 127.0.0.1:8080/drain every 1s until body contains "done"',
    );
  });

  test('bad values are named with what was expected', () => {
    expect(problems({ url: 'ftp://x/drain' })).toMatch(/^url: got scheme "ftp:": expected an http/);
    expect(problems({ url: 'http://x/', method: 'FETCH' })).toMatch(/^method: got "FETCH": expected one of GET, HEAD, POST/);
    expect(problems({ url: 'http://x/', expectStatus: ['2xx', 'ok'] })).toMatch(/^expectStatus: got "ok": expected a status such as 200/);
    expect(problems({ url: 'http://x/', method: 'GET', body: 'x' })).toMatch(/^body: a GET request cannot carry a body/);
    expect(problems({ url: 'http://x/', body: 'kind={{#if}}' })).toMatch(/^body: not a valid template/);
    expect(problems({ url: 'http://x/', until: { interval: '1s' } })).toMatch(/^until: expected exactly one condition of status, bodyEquals/);
    expect(problems({ url: 'http://x/', until: { status: 200, bodyEquals: 'x' } })).toMatch(/got status and bodyEquals: expected exactly one condition/);
    expect(problems({ url: 'http://x/', until: { json: { path: 'n', lessThan: 'five' } } })).toMatch(/until.json.lessThan: expected a number/);
    expect(problems({ url: 'http://x/', until: { json: { path: 'n' } } })).toMatch(/until.json: expected exactly one comparison of equals/);
    expect(problems({ url: 'http://x/', retries: 3 })).toMatch(/retries/);
  });
});
