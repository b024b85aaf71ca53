import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { z } from 'zod';
import type { StepConfig } from '../../src/config/types.js';
import { hostFacts } from '../../src/lib/host.js';
import { createLogger } from '../../src/lib/log.js';
import { buildPlan, executePlan } from '../../src/plan/executor.js';
import type { AnyStepType, StepContext } from '../../src/steps/types.js';
import { findStepType } from '../../src/steps/registry.js';
import { webhookStep, type WebhookOptions } from '../../src/steps/webhook/step.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { testNotice, testStepContext, type TestStepContext } from '../helpers/step-context.js';

let receivers: Receiver[] = [];
let contexts: TestStepContext[] = [];

afterEach(async () => {
  contexts.forEach((context) => context.dispose());
  await Promise.all(receivers.map((receiver) => receiver.close()));
  receivers = [];
  contexts = [];
});

async function receiver(...replies: Parameters<typeof startReceiver>): Promise<Receiver> {
  const started = await startReceiver(...replies);
  receivers.push(started);
  return started;
}

function context(options: Parameters<typeof testStepContext>[0] = {}): TestStepContext {
  const made = testStepContext(options);
  contexts.push(made);
  return made;
}

function options(raw: Record<string, unknown>): WebhookOptions {
  return webhookStep.schema.parse({ backoff: { base: '10ms', max: '50ms' }, ...raw });
}

/** The receiver-side check docs/webhooks.md describes, written out independently. */
function verifySignature(secret: string, header: string, rawBody: string, nowSeconds: number): boolean {
  const parts = new Map(header.split(',').map((part) => part.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex');
  return v1.length === expected.length && timingSafeEqual(Buffer.from(v1), Buffer.from(expected));
}

describe('webhook step', () => {
  test('POSTs the versioned notice event as JSON', async () => {
    const hook = await receiver();
    const { context: ctx } = context();
    const detail = await webhookStep.run(options({ url: hook.url('/events') }), ctx);
    const [request] = await hook.waitFor(1);
    expect(request!.method).toBe('POST');
    expect(request!.path).toBe('/events');
    expect(request!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(request!.headers['user-agent']).toMatch(/^preemptd\//);
    const body = JSON.parse(request!.body);
    expect(body).toMatchObject({ version: 1, type: 'notice', notice: { id: ctx.notice.id, kind: 'terminate' }, steps: [] });
    expect(request!.headers['x-preemptd-signature']).toBeUndefined();
    expect(detail).toEqual({ format: 'json', event: 'notice', attempts: 1, status: 200 });
  });

  test('the finish run POSTs plan.finished with the other steps', async () => {
    const hook = await receiver();
    const { context: base } = context();
    const steps = [{ name: 'drain', type: 'http', status: 'ok' as const, ms: 5 }];
    const ctx: StepContext = { ...base, phase: 'finish', event: (type) => ({ ...base.event(type), steps }) };
    await webhookStep.run(options({ url: hook.url(), send: 'finish' }), ctx);
    const body = JSON.parse((await hook.waitFor(1))[0]!.body);
    expect(body.type).toBe('plan.finished');
    expect(body.steps).toEqual(steps);
  });

  test('sends user headers with the request', async () => {
    const hook = await receiver();
    await webhookStep.run(options({ url: hook.url(), headers: { 'X-Team': 'ml-infra' } }), context().context);
    expect((await hook.waitFor(1))[0]!.headers['x-team']).toBe('ml-infra');
  });

  test('signs the body so the documented receiver check accepts it and rejects a changed body', async () => {
    const hook = await receiver();
    const secret = 'whsec-test-0123456789';
    await webhookStep.run(options({ url: hook.url(), secret }), context().context);
    const [request] = await hook.waitFor(1);
    const header = String(request!.headers['x-preemptd-signature']);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(request!.headers['x-preemptd-timestamp']).toBe(header.slice(2, header.indexOf(',')));
    const now = Math.floor(Date.now() / 1000);
    expect(verifySignature(secret, header, request!.body, now)).toBe(true);
    expect(verifySignature(secret, header, request!.body.replace('terminate', 'rebalance'), now)).toBe(false);
    expect(verifySignature('other-secret', header, request!.body, now)).toBe(false);
    expect(verifySignature(secret, header, request!.body, now + 301)).toBe(false);
  });

  test('retries a 500 and succeeds on the next attempt', async () => {
    const hook = await receiver({ status: 500 }, { status: 200 });
    const detail = await webhookStep.run(options({ url: hook.url() }), context().context);
    expect(hook.requests).toHaveLength(2);
    expect(detail).toMatchObject({ attempts: 2, status: 200 });
    expect(hook.requests[1]!.body).toBe(hook.requests[0]!.body);
  });

  test('waits as long as a 429 Retry-After asks before trying again', async () => {
    const hook = await receiver({ status: 429, headers: { 'retry-after': '1' } }, { status: 200 });
    const detail = await webhookStep.run(options({ url: hook.url() }), context().context);
    expect(detail).toMatchObject({ attempts: 2, status: 200 });
    // Backoff alone would wait at most 50ms here.
    expect(hook.requests[1]!.at - hook.requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  test('does not retry a 404 and fails with the status', async () => {
    const hook = await receiver({ status: 404 });
    const run = webhookStep.run(options({ url: hook.url() }), context().context);
    await expect(run).rejects.toMatchObject({
      name: 'StepFailure',
      message: `webhook to ${new URL(hook.origin).host} failed: HTTP 404 (1 attempt, not retryable)`,
      detail: { attempts: 1, status: 404 },
    });
    expect(hook.requests).toHaveLength(1);
  });

  test('stops retrying when the next try would pass the step deadline', async () => {
    const hook = await receiver({ status: 503, headers: { 'retry-after': '2' } });
    const run = webhookStep.run(options({ url: hook.url(), retries: 10 }), context({ timeoutMs: 800 }).context);
    await expect(run).rejects.toThrow(/HTTP 503 \(1 attempt, step deadline reached\)/);
    expect(hook.requests).toHaveLength(1);
  });

  test('retries connection errors and reports the last one', async () => {
    const closed = await startReceiver();
    const url = closed.url('/hook');
    await closed.close();
    const run = webhookStep.run(options({ url, retries: 2 }), context().context);
    await expect(run).rejects.toThrow(/^webhook to 127\.0\.0\.1:\d+ failed: ECONNREFUSED \(3 attempts, retries exhausted\)$/);
  });

  test('an attempt that outlives its timeout is cut off and retried', async () => {
    const hook = await receiver({ status: 200, delayMs: 2000 }, { status: 200 });
    const detail = await webhookStep.run(options({ url: hook.url(), timeout: '200ms' }), context().context);
    expect(detail).toMatchObject({ attempts: 2, status: 200 });
  });

  test('goes through an explicit proxy with a CONNECT tunnel', async () => {
    const hook = await receiver();
    const tunnels: string[] = [];
    const proxy = createServer();
    proxy.on('connect', (request: IncomingMessage, client: Socket) => {
      tunnels.push(request.url ?? '');
      const [host, port] = (request.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      await webhookStep.run(options({ url: hook.url('/via-proxy'), proxy: proxyUrl }), context().context);
      expect(tunnels).toEqual([new URL(hook.origin).host]);
      expect((await hook.waitFor(1))[0]!.path).toBe('/via-proxy');
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  test('a proxy refusing the tunnel fails the step without showing the proxy credentials', async () => {
    const proxy = createServer();
    proxy.on('connect', (_request: IncomingMessage, client: Socket) => {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const proxyUrl = `http://user:PROXYPASS@127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const run = webhookStep.run(options({ url: 'http://127.0.0.1:9/hook', proxy: proxyUrl, retries: 0 }), context().context);
      await expect(run).rejects.toThrow(/^webhook to 127\.0\.0\.1:9 failed: .*407/);
      await expect(run).rejects.not.toThrow(/PROXYPASS/);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  test('never puts the secret URL in its error or its log lines', async () => {
    const hook = await receiver({ status: 500 }, { status: 502 }, { status: 403 });
    const secretPath = '/services/T0000/B0000/XXsecretTOKENXX';
    const made = context();
    const error: Error = await webhookStep.run(options({ url: hook.url(secretPath) }), made.context).then(
      () => { throw new Error('expected the webhook to fail'); },
      (failure: Error) => failure,
    );
    expect(error.message).toContain('HTTP 403');
    expect(error.message).not.toContain('XXsecretTOKENXX');
    expect(hook.requests).toHaveLength(3);
    expect(made.logs.length).toBeGreaterThan(0);
    expect(JSON.stringify(made.logs)).not.toContain('XXsecretTOKENXX');
  });
});

describe('webhook in a plan', () => {
  test('fires at once on the notice, while a slow step beside it is still running, and logs no secret', async () => {
    const hook = await receiver();
    const secretPath = '/hooks/YYsecretTOKENYY';
    let slowFinished = false;
    let finishSlow!: () => void;
    const slowMayFinish = new Promise<void>((resolve) => (finishSlow = resolve));
    // Runs until the test lets it end, however long the webhook takes to arrive.
    const slow: AnyStepType = {
      type: 'slow',
      destructive: false,
      schema: z.any(),
      describe: () => 'slow',
      run: async () => {
        await slowMayFinish;
        slowFinished = true;
      },
    };
    const lookup = (type: string) => (type === 'slow' ? slow : findStepType(type));
    const steps: StepConfig[] = [
      { name: 'drain', type: 'slow', options: {}, after: [], on: null, timeoutMs: 5000 },
      { name: 'tell', type: 'webhook', options: options({ url: hook.url(secretPath), send: 'both' }), after: [], on: null, timeoutMs: 5000 },
    ];
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }) });
    const plan = buildPlan(testNotice(), { steps, safetyMarginMs: 5000, minimumBudgetMs: 1000 }, Date.now(), lookup);
    const running = executePlan(plan, { log, host: hostFacts(), lookup });
    await hook.waitFor(1);
    expect(slowFinished).toBe(false);
    finishSlow();
    const result = await running;
    expect(result.steps.map((step) => [step.name, step.status])).toEqual([
      ['drain', 'ok'],
      ['tell', 'ok'],
      ['tell:finish', 'ok'],
    ]);
    const finished = JSON.parse(hook.requests[1]!.body);
    expect(finished.type).toBe('plan.finished');
    expect(finished.steps.map((step: { name: string }) => step.name)).toEqual(['drain', 'tell']);
    expect(lines.join('')).not.toContain('YYsecretTOKENYY');
  });
});

describe('webhook options', () => {
  const problems = (raw: Record<string, unknown>) => {
    const parsed = webhookStep.schema.safeParse(raw);
    return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };

  test('fills defaults: json at notice, 5 retries, 5s per attempt', () => {
    expect(options({ url: 'https://example.com/hook', backoff: undefined })).toMatchObject({
      format: 'json',
      send: 'notice',
      retries: 5,
      timeout: 5000,
      backoff: { base: 250, max: 5000 },
      headers: {},
    });
    expect(webhookStep.phase(options({ url: 'https://example.com/x', send: 'both' }))).toBe('both');
  });

  test('explains each bad option', () => {
    expect(problems({})).toEqual(['url: expected the webhook URL (http:// or https://)']);
    expect(problems({ url: 'ftp://x/y' })).toEqual(['url: got scheme "ftp:": expected an http:// or https:// URL']);
    expect(problems({ url: 'https://x/y', format: 'irc' })[0]).toBe('format: expected one of json, slack, teams, discord, googlechat, telegram, template');
    expect(problems({ format: 'telegram' })).toEqual([
      'botToken: format telegram needs botToken (the Bot API token)',
      'chatId: format telegram needs chatId (the chat to post to)',
    ]);
    expect(problems({ url: 'https://x/y', format: 'template' })).toEqual(['template: format template needs template (handlebars source for the body)']);
    expect(problems({ url: 'https://x/y', format: 'template', template: '{{#if x}}' })).toEqual([
      'template: not a valid handlebars template: Parse error on line 1 near `{{#if x}}`: the template ends too early (an unclosed {{#block}}?)',
    ]);
    expect(problems({ url: 'https://x/y', format: 'template', template: '{"a": {{json host}}}' })).toEqual([
      'template: not a valid handlebars template: Parse error on line 1 near `{"a": {{json host}}}`: unexpected CLOSE_UNESCAPED',
    ]);
    expect(problems({ url: 'https://x/y', format: 'slack', secret: 'abcdef' })).toEqual([
      'secret: secret signs json and template bodies only; chat services do not check signatures',
    ]);
    expect(problems({ url: 'https://x/y', retries: -1 })[0]).toMatch(/^retries: /);
    expect(problems({ url: 'https://x/y', timeout: 'soon' })[0]).toBe('timeout: got "soon": expected a duration such as 500ms, 5s, 2m or 1h');
    expect(problems({ url: 'https://x/y', urll: 'typo' })[0]).toMatch(/urll/);
  });

  test('describes itself by host only', () => {
    const text = webhookStep.describe(options({ url: 'https://hooks.slack.com/services/T0/B0/SECRET', format: 'slack', send: 'both' }));
    expect(text).toBe('POST slack at notice and after the plan to hooks.slack.com (5 retries)');
    expect(text).not.toContain('SECRET');
  });
});
