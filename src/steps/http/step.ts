import { z } from 'zod';
import { sleep } from '../../lib/backoff.js';
import { httpUrl, positiveDuration } from '../../config/fields.js';
import { showValue } from '../../lib/format.js';
import { scrubSecrets } from '../../lib/log.js';
import { formatDuration } from '../../lib/duration.js';
import type { PreemptdEvent } from '../../notice/event.js';
import { AGENT_VERSION } from '../../lib/host.js';
import {
  checkCondition,
  CONDITION_KEYS,
  conditionFields,
  describeCondition,
  type ConditionCheck,
  type UntilCondition,
} from './condition.js';
import { loadGot, preloadGot } from '../../lib/load-got.js';
import { BODY_LIMIT_BYTES, requestBounded } from '../bounded-request.js';
import { describeStatuses, statusList, statusMatches, SUCCESS, type StatusRange } from './status-range.js';
import { renderTemplate, validateTemplate } from '../webhook/render.js';
import { hostsResolve } from '../checks.js';
import type { StepContext, StepDetail, StepType } from '../types.js';
import { StepFailure } from '../../lib/errors.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
type Method = (typeof METHODS)[number];

export interface HttpRequestOptions {
  url: string;
  method: Method;
  /** Values may hold `{{notice.kind}}`-style templates. */
  headers: Record<string, string>;
  /** A template string sent as is, or a value sent as JSON. */
  body?: { text: string } | { json: unknown };
}

export interface HttpOptions {
  request: HttpRequestOptions;
  expectStatus: StatusRange[];
  /** Time limit of one request. */
  timeoutMs: number;
  /** Connection refused (the service is already gone): success or failure. */
  onRefused: 'ok' | 'fail';
  until: { request: HttpRequestOptions; intervalMs: number; condition: UntilCondition } | null;
}

const method = z.string().transform((value, ctx) => {
  const upper = value.trim().toUpperCase();
  if (!(METHODS as readonly string[]).includes(upper)) {
    ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: expected one of ${METHODS.join(', ')}` });
    return z.NEVER;
  }
  return upper as Method;
});

/** A string that may carry handlebars placeholders; checked when the config loads. */
const templated = z.string().superRefine((value, ctx) => {
  const problem = value.includes('{{') ? validateTemplate(value) : undefined;
  if (problem) ctx.addIssue({ code: 'custom', message: `not a valid template: ${problem}` });
});

const headers = z.record(z.string(), templated);

const untilSchema = z
  .strictObject({
    url: httpUrl().optional(),
    method: method.default('GET'),
    headers: headers.optional(),
    interval: positiveDuration().default(1000),
    ...conditionFields,
  })
  .transform((raw, ctx) => {
    const given = CONDITION_KEYS.filter((key) => raw[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `${given.length === 0 ? 'expected' : `got ${given.join(' and ')}: expected`} exactly one condition of ${CONDITION_KEYS.join(', ')}`,
      });
      return z.NEVER;
    }
    const condition: UntilCondition =
      raw.status !== undefined
        ? { kind: 'status', statuses: raw.status }
        : raw.bodyEquals !== undefined
          ? { kind: 'bodyEquals', text: raw.bodyEquals }
          : raw.bodyContains !== undefined
            ? { kind: 'bodyContains', text: raw.bodyContains }
            : raw.bodyMatches !== undefined
              ? { kind: 'bodyMatches', pattern: raw.bodyMatches }
              : { kind: 'json', ...raw.json! };
    return { url: raw.url, method: raw.method, headers: raw.headers, intervalMs: raw.interval, condition };
  });

export const httpSchema = z
  .strictObject({
    url: httpUrl(),
    method: method.default('POST'),
    headers: headers.default({}),
    body: z.union([templated, z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
    expectStatus: statusList().default(SUCCESS),
    timeout: positiveDuration().default(5000),
    onRefused: z.enum(['ok', 'fail'], { message: 'expected ok or fail' }).default('ok'),
    until: untilSchema.optional(),
  })
  .superRefine((raw, ctx) => {
    if (raw.body !== undefined && (raw.method === 'GET' || raw.method === 'HEAD')) {
      ctx.addIssue({ code: 'custom', path: ['body'], message: `a ${raw.method} request cannot carry a body: use POST or PUT` });
    }
  })
  .transform((raw): HttpOptions => {
    const body = raw.body === undefined ? undefined : typeof raw.body === 'string' ? { text: raw.body } : { json: raw.body };
    const until = raw.until;
    return {
      request: { url: raw.url, method: raw.method, headers: raw.headers, ...(body ? { body } : {}) },
      expectStatus: raw.expectStatus,
      timeoutMs: raw.timeout,
      onRefused: raw.onRefused,
      until: until
        ? {
            // Polls go to the same service by default, with the same headers (credentials).
            request: { url: until.url ?? raw.url, method: until.method, headers: until.headers ?? raw.headers },
            intervalMs: until.intervalMs,
            condition: until.condition,
          }
        : null,
    };
  });

/** `POST 127.0.0.1:8080/drain`: no credentials, no query string (either may hold a token). */
function describeRequest(request: HttpRequestOptions): string {
  const url = new URL(request.url);
  return `${request.method} ${url.host}${url.pathname}`;
}

/**
 * Fills `{{notice.kind}}`, `{{notice.instance.id}}`, `{{host.hostname}}`, `{{planDeadline}}`
 * and the like from the notice event, with the same engine as webhook templates.
 */
function fill(source: string, event: PreemptdEvent): string {
  if (!source.includes('{{')) return source;
  return renderTemplate(source, event);
}

type Answer =
  | { kind: 'response'; status: number; body: string; truncated: boolean; crossOrigin?: string }
  | { kind: 'refused' }
  | { kind: 'error'; reason: string };

/**
 * Redirects are followed within the origin of the configured URL only: a service must not
 * be able to send the step's credential headers and body to another host.
 */
function sameOrigin(request: HttpRequestOptions) {
  const origin = new URL(request.url).origin;
  return (response: { url: string; headers: { location?: string } }) => redirectTarget(response)?.origin === origin;
}

function redirectTarget(response: { url: string; headers: { location?: string } }): URL | undefined {
  const location = response.headers.location;
  return URL.canParse(location ?? '', response.url) ? new URL(location!, response.url) : undefined;
}

async function send(request: HttpRequestOptions, options: HttpOptions, event: PreemptdEvent, context: StepContext): Promise<Answer> {
  const body = request.body;
  const { RequestError } = await loadGot();
  try {
    const response = await requestBounded(
      request.url,
      {
        method: request.method,
        headers: {
          'user-agent': `preemptd/${AGENT_VERSION}`,
          ...Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, fill(value, event)])),
        },
        ...(body === undefined ? {} : 'text' in body ? { body: fill(body.text, event) } : { json: body.json }),
        timeout: { request: Math.max(1, Math.min(options.timeoutMs, context.deadline - Date.now())) },
        retry: { limit: 0 },
        throwHttpErrors: false,
        followRedirect: sameOrigin(request),
        signal: context.signal,
      },
      BODY_LIMIT_BYTES,
    );
    const target = response.status >= 300 && response.status < 400 ? redirectTarget({ url: request.url, headers: response.headers }) : undefined;
    const crossOrigin = target !== undefined && target.origin !== new URL(request.url).origin ? target.host : undefined;
    return { kind: 'response', status: response.status, body: response.body, truncated: response.truncated, ...(crossOrigin ? { crossOrigin } : {}) };
  } catch (error) {
    if (context.signal.aborted) throw error;
    if (error instanceof RequestError && error.code === 'ECONNREFUSED') return { kind: 'refused' };
    if (error instanceof RequestError && error.name === 'TimeoutError') {
      return { kind: 'error', reason: `no answer within ${formatDuration(options.timeoutMs)}` };
    }
    return { kind: 'error', reason: error instanceof RequestError ? error.code : 'request error' };
  }
}

/** Said in the result when a body went past the limit, so a failed `until:` is understood. */
function truncation(truncated: boolean): StepDetail {
  return truncated ? { bodyTruncated: `only the first ${BODY_LIMIT_BYTES} bytes were read` } : {};
}

function refused(options: HttpOptions, request: HttpRequestOptions, detail: StepDetail): StepDetail {
  const outcome = { ...detail, outcome: 'connection_refused' };
  if (options.onRefused === 'fail') throw new StepFailure(`${describeRequest(request)}: connection refused`, outcome);
  return outcome;
}

/** Polls until the condition holds; the step's signal (timeout, plan deadline) ends it otherwise. */
async function pollUntil(options: HttpOptions, event: PreemptdEvent, context: StepContext, base: StepDetail): Promise<StepDetail> {
  const until = options.until!;
  const goal = describeCondition(until.condition);
  let last: ConditionCheck = { holds: false, seen: 'nothing yet' };
  let truncated = false;
  for (let polls = 1; ; polls++) {
    const answer = await send(until.request, options, event, context).catch((error: unknown) => {
      if (context.signal.aborted) return undefined;
      throw error;
    });
    if (answer?.kind === 'refused') return refused(options, until.request, { ...base, polls });
    if (answer?.kind === 'response') last = checkCondition(until.condition, answer);
    if (answer?.kind === 'error') last = { holds: false, seen: answer.reason };
    if (answer?.kind === 'response' && answer.truncated) truncated = true;
    const detail = { ...base, polls, until: goal, seen: last.seen, ...truncation(truncated) };
    if (last.holds) return { ...detail, outcome: 'ok' };
    context.progress({ polls, seen: last.seen });
    if (answer !== undefined) await sleep(until.intervalMs, context.signal);
    if (context.signal.aborted) {
      throw new StepFailure(`until ${goal} never held: last saw ${last.seen} after ${polls} polls`, detail);
    }
  }
}

/**
 * Drain calls: one request (e.g. POST /drain), then optionally polls (`until:`) until the
 * service reports it is done. A refused connection means the service is already gone.
 */
export const httpStep = {
  type: 'http',
  destructive: true,
  // One request and a margin; polling `until` a drain is done gets 30 s.
  defaultTimeoutMs: (options) => (options.until === null ? options.timeoutMs + 2_000 : 30_000),
  schema: httpSchema,
  async run(options, context) {
    const event = context.event('notice');
    const { request } = options;
    const base = { request: describeRequest(request) };
    const answer = await send(request, options, event, context);
    if (answer.kind === 'refused') return refused(options, request, base);
    if (answer.kind === 'error') throw new StepFailure(`${base.request} failed: ${answer.reason}`, base);
    const detail = { ...base, status: answer.status, ...truncation(answer.truncated) };
    if (!statusMatches(options.expectStatus, answer.status)) {
      const redirect = answer.crossOrigin ? ` (a redirect to ${answer.crossOrigin}, not followed: only same-origin redirects are)` : '';
      throw new StepFailure(
        `${base.request} answered HTTP ${answer.status}${redirect}: expected ${describeStatuses(options.expectStatus)}`,
        // Scrubbed before showValue cuts it: a secret cut in half is no longer recognised later.
        { ...detail, body: showValue(scrubSecrets(answer.body)) },
      );
    }
    if (options.until === null) return { ...detail, outcome: 'ok' };
    return pollUntil(options, event, context, detail);
  },
  describe(options) {
    const first = describeRequest(options.request);
    if (options.until === null) return first;
    const every = formatDuration(options.until.intervalMs);
    return `${first}, then ${describeRequest(options.until.request)} every ${every} until ${describeCondition(options.until.condition)}`;
  },
  /** The hosts of the request (and `until:` polls) resolve; nothing is sent. */
  check: (options) => hostsResolve([options.request.url, ...(options.until ? [options.until.request.url] : [])]),
  preload: preloadGot,
} satisfies StepType<HttpOptions>;
