import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { RequestError } from 'got';
import { sleep } from '../../lib/backoff.js';
import { loadGot } from '../../lib/load-got.js';
import { requestBounded } from '../bounded-request.js';
import { AGENT_VERSION } from '../../lib/host.js';
import type { Logger } from '../../lib/log.js';
import { StepFailure } from '../../lib/errors.js';
import { decideRetry, type AttemptOutcome, type RetryPolicy } from './retry.js';

export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** Extra headers computed per attempt (signatures carry the attempt's time). */
  headersForAttempt?: (body: string, now: number) => Record<string, string>;
  attemptTimeoutMs: number;
  policy: RetryPolicy;
  /** Explicit proxy URL; otherwise HTTPS_PROXY / HTTP_PROXY (and NO_PROXY) from the environment. */
  proxy?: string;
  signal: AbortSignal;
  /** Epoch ms: no attempt starts or runs past it. */
  deadline: number;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface WebhookResult {
  attempts: number;
  status: number;
}

/**
 * POSTs with the retry policy of retry.ts (got's own retry is off). Messages and logs name
 * the host only: the URL of a chat webhook is its credential.
 */
export async function postWebhook(request: WebhookRequest): Promise<WebhookResult> {
  const target = new URL(request.url);
  const where = `webhook to ${target.host}`;
  const agent = await proxyAgent(target, request.proxy, request.env ?? process.env);
  for (let attempt = 1; ; attempt++) {
    const now = Date.now();
    const outcome = await attemptOnce(request, agent, now);
    if (outcome.status !== undefined && outcome.status < 300) return { attempts: attempt, status: outcome.status };
    const failure = outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}`;
    if (request.signal.aborted) throw new StepFailure(`${where} cancelled after ${attempt} attempts (${failure})`, { attempts: attempt, status: outcome.status });
    const decision = decideRetry({ attempt, outcome, policy: request.policy, now: Date.now(), deadline: request.deadline });
    if (!decision.retry) {
      throw new StepFailure(`${where} failed: ${failure} (${attempt} ${attempt === 1 ? 'attempt' : 'attempts'}, ${decision.reason})`, {
        attempts: attempt,
        ...(outcome.status === undefined ? {} : { status: outcome.status }),
      });
    }
    request.log.warn({ host: target.host, attempt, failure, retryInMs: decision.delayMs }, 'webhook attempt failed; retrying');
    await sleep(decision.delayMs, request.signal);
  }
}

type Outcome = AttemptOutcome & { error: string };

/** The answer's body is never read: a receiver that streams one without end costs nothing. */
async function attemptOnce(request: WebhookRequest, agent: Agents | undefined, now: number): Promise<Outcome> {
  const remaining = request.deadline - now;
  const { RequestError } = await loadGot();
  try {
    const response = await requestBounded(
      request.url,
      {
        method: 'POST',
        body: request.body,
        headers: {
          'user-agent': `preemptd/${AGENT_VERSION}`,
          ...request.headers,
          ...request.headersForAttempt?.(request.body, now),
        },
        timeout: { request: Math.max(1, Math.min(request.attemptTimeoutMs, remaining)) },
        retry: { limit: 0 },
        throwHttpErrors: false,
        followRedirect: false,
        signal: request.signal,
        ...(agent ? { agent } : {}),
      },
      0,
    );
    const retryAfter = response.headers['retry-after'];
    return { status: response.status, error: '', ...(retryAfter === undefined ? {} : { retryAfter }) };
  } catch (error) {
    return { error: describeNetworkError(error, RequestError) };
  }
}

/** A short reason without the URL (got's messages can carry it). */
function describeNetworkError(error: unknown, requestError: typeof RequestError): string {
  if (error instanceof requestError) {
    if (error.name === 'TimeoutError') return 'timed out';
    if (error.name === 'AbortError' || error.code === 'ERR_ABORTED') return 'aborted';
    // A generic code says nothing; the message might name a URL, so any URL is cut out.
    if (error.code === 'ERR_GOT_REQUEST_ERROR') return error.message.split('\n')[0]!.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<url>');
    return error.code;
  }
  return error instanceof Error && error.name === 'AbortError' ? 'aborted' : 'request error';
}

type Agents = { http?: HttpAgent; https?: HttpsAgent };

async function proxyAgent(target: URL, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<Agents | undefined> {
  const proxy = explicit ?? proxyFromEnv(target, env);
  if (!proxy) return undefined;
  // Loaded only when a proxy is in use.
  const { HttpProxyAgent, HttpsProxyAgent } = await import('hpagent');
  return target.protocol === 'https:'
    ? { https: new HttpsProxyAgent({ proxy, keepAlive: false }) }
    : { http: new HttpProxyAgent({ proxy, keepAlive: false }) };
}

/** HTTPS_PROXY / HTTP_PROXY (either case), unless NO_PROXY lists the host, a suffix of it, or `*`. */
export function proxyFromEnv(target: URL, env: NodeJS.ProcessEnv): string | undefined {
  const https = target.protocol === 'https:';
  const proxy = https ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!proxy) return undefined;
  const host = target.hostname.toLowerCase();
  const bypass = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((entry) => entry.trim().toLowerCase().replace(/:\d+$/, ''))
    .filter(Boolean)
    .some((entry) => entry === '*' || host === entry.replace(/^\./, '') || host.endsWith(entry.startsWith('.') ? entry : `.${entry}`));
  return bypass ? undefined : proxy;
}
