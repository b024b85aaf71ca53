import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { StepFailure } from '../../src/lib/errors.js';
import { BODY_LIMIT_BYTES } from '../../src/steps/bounded-request.js';
import { httpStep } from '../../src/steps/http/step.js';
import { webhookStep } from '../../src/steps/webhook/step.js';
import { TestResources } from '../helpers/resources.js';
import { testStepContext } from '../helpers/step-context.js';
import { until } from '../helpers/until.js';

// Services that answer in ways meant to hurt the agent: bodies without end, redirects to
// another host, bodies built to make a backtracking regex run for hours.

interface Hit {
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const resources = new TestResources();

async function serve(handler: (request: IncomingMessage, response: ServerResponse, body: string) => void) {
  const hits: Hit[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      hits.push({ url: request.url!, headers: request.headers, body });
      handler(request, response, body);
    });
  });
  const { base } = await resources.listen(server);
  return { base, hits };
}

/** Answers 200 with `head`, then 64 KiB chunks for as long as the client reads; counts whether the client hung up. */
function endless(head: string) {
  const state = { clientClosed: false };
  const handler = (_request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.write(head);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const pump = () => {
      while (!response.destroyed && response.write(chunk));
    };
    response.on('drain', pump);
    response.on('close', () => (state.clientClosed = true));
    pump();
  };
  return { state, handler };
}

function context(timeoutMs: number) {
  const step = testStepContext({ timeoutMs });
  resources.defer(() => step.dispose());
  return step.context;
}

async function failure(promise: Promise<unknown>): Promise<StepFailure> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(StepFailure);
  return error as StepFailure;
}

describe('response bodies without end', () => {
  test('the http step reads at most the limit, hangs up, and says so in its result', async () => {
    const { state, handler } = endless('draining');
    const { base } = await serve(handler);
    const detail = await httpStep.run(httpStep.schema.parse({ url: `${base}/drain`, timeout: '3s' }), context(5000));
    expect(detail).toEqual({
      request: expect.stringContaining('/drain'),
      status: 200,
      bodyTruncated: `only the first ${BODY_LIMIT_BYTES} bytes were read`,
      outcome: 'ok',
    });
    await until(() => state.clientClosed);
  });

  test('an until condition still sees the head of an endless body', async () => {
    const { handler } = endless('queue=0\n');
    const { base } = await serve(handler);
    const options = httpStep.schema.parse({ url: `${base}/drain`, timeout: '3s', until: { bodyContains: 'queue=0', interval: '50ms' } });
    const detail = await httpStep.run(options, context(5000));
    expect(detail).toMatchObject({ polls: 1, outcome: 'ok', bodyTruncated: expect.any(String) });
  });

  test('the webhook step takes the status and never reads the body', async () => {
    const { state, handler } = endless('ok');
    const { base, hits } = await serve(handler);
    const options = webhookStep.schema.parse({ url: `${base}/hook`, timeout: '2s', retries: 0 });
    const detail = await webhookStep.run(options, context(5000));
    expect(detail).toMatchObject({ attempts: 1, status: 200 });
    expect(hits).toHaveLength(1);
    await until(() => state.clientClosed);
  });
});

describe('redirects', () => {
  test('a redirect to another origin is not followed: credentials and body stay home', async () => {
    const elsewhere = await serve((_request, response) => response.writeHead(200).end('thanks'));
    const service = await serve((_request, response) => response.writeHead(307, { location: `${elsewhere.base}/collect` }).end());
    const options = httpStep.schema.parse({ url: `${service.base}/drain`, headers: { 'x-api-key': 'drain-key-123' }, body: 'payload' });
    const failed = await failure(httpStep.run(options, context(5000)));
    expect(failed.message).toMatch(/answered HTTP 307 \(a redirect to 127\.0\.0\.1:\d+, not followed: only same-origin redirects are\): expected 2xx/);
    expect(elsewhere.hits).toEqual([]);
    expect(service.hits).toHaveLength(1);
  });

  test('a redirect within the same origin is followed', async () => {
    const service = await serve((request, response) => {
      if (request.url === '/old') return response.writeHead(308, { location: '/new' }).end();
      response.writeHead(202).end('draining');
    });
    const options = httpStep.schema.parse({ url: `${service.base}/old`, headers: { 'x-api-key': 'drain-key-123' } });
    expect(await httpStep.run(options, context(5000))).toMatchObject({ status: 202, outcome: 'ok' });
    expect(service.hits.map((hit) => hit.url)).toEqual(['/old', '/new']);
    expect(service.hits[1]!.headers['x-api-key']).toBe('drain-key-123');
  });
});

describe('catastrophic patterns', () => {
  // `^(a+)+$` against a run of a's and a `!` takes a backtracking engine 2^n steps: with
  // 5000 a's the unfixed agent never finishes the first poll, and no timer fires meanwhile.
  test('until.bodyMatches runs in linear time: timers keep ticking and the step deadline fires', async () => {
    const service = await serve((_request, response) => response.writeHead(200).end(`${'a'.repeat(5000)}!`));
    const options = httpStep.schema.parse({ url: `${service.base}/drain`, until: { bodyMatches: '^(a+)+$', interval: '50ms' } });
    let ticks = 0;
    const ticker = setInterval(() => (ticks += 1), 10);
    try {
      const failed = await failure(httpStep.run(options, context(800)));
      expect(failed.message).toMatch(/^until body matches \/\^\(a\+\)\+\$\/ never held: last saw body "aaaa/);
      expect((failed.detail as { polls: number }).polls).toBeGreaterThan(1);
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(ticker);
    }
  });

  test('ordinary patterns still match', async () => {
    const service = await serve((_request, response) => response.writeHead(200).end('state=idle\nqueue=0\n'));
    const options = httpStep.schema.parse({ url: `${service.base}/drain`, until: { bodyMatches: '(?m)^queue=0$', interval: '50ms' } });
    expect(await httpStep.run(options, context(5000))).toMatchObject({ polls: 1, outcome: 'ok' });
  });

  test('config validation names the accepted syntax', () => {
    const result = httpStep.schema.safeParse({ url: 'http://127.0.0.1:9/drain', until: { bodyMatches: '(a)\\1' } });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.message).toMatch(/not a valid regular expression in RE2 syntax \(as in Go\): no backreferences/);
  });
});
