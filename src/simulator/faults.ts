import { randomBytes } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ProviderName } from '../notice/notice.js';
import type { TriggerSpec } from './cloud.js';
import { isoSeconds } from './aws.js';
import { tencentTime } from './tencent.js';
import { captureAnswer, drip, endless, send, type Answer } from './fault-delivery.js';
import { NO_FAULTS, NOTICE_FAULTS, type FaultEntry, type FaultName, type FaultSpec } from './fault-spec.js';

type Transform = (answer: Answer, path: string) => Answer | undefined;

function isTokenPut(request: IncomingMessage): boolean {
  return request.method === 'PUT' && (request.url ?? '').split('?')[0]!.endsWith('/api/token');
}

function errorPage(status: number, title: string): string {
  return `<html><head><title>${status} ${title}</title></head><body><h1>${status} ${title}</h1><hr><center>nginx</center></body></html>\n`;
}

/** What a proxy or captive portal answers in place of the metadata service. */
const PROXY_PAGE =
  '<!DOCTYPE html>\n<html><head><title>ERROR: The requested URL could not be retrieved</title></head>\n' +
  '<body><h1>ERROR</h1><p>The requested URL could not be retrieved.</p><p>Connection to 169.254.169.254 failed.</p></body></html>\n';

/** What a real metadata service adds to every answer, so a fault does not look like another server. */
const SERVICE_HEADERS: Record<ProviderName, OutgoingHttpHeaders> = {
  aws: { Server: 'EC2ws' },
  gcp: { 'Metadata-Flavor': 'Google', Server: 'Metadata Server for VM' },
  azure: {},
  alibaba: {},
  tencent: {},
};

/** Cut short: never valid JSON, never a whole value. */
function truncate(answer: Answer): Answer {
  const source = answer.status === 200 && answer.body.length > 1 ? answer.body : '{"action": "terminate", "time": "2030-01-01T00:00:00Z"}';
  return { status: 200, headers: { 'Content-Type': 'application/json' }, body: source.slice(0, Math.ceil(source.length / 2)) };
}

/** Every value swapped for one of another type: strings become numbers, numbers strings, and so on. */
export function withWrongTypes(value: unknown): unknown {
  if (typeof value === 'string') return value.length;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'yes' : 0;
  if (value === null) return {};
  if (Array.isArray(value)) return Object.fromEntries(value.map((item, index) => [String(index), withWrongTypes(item)]));
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, withWrongTypes(item)]));
}

function wrongTypes(answer: Answer): Answer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    // A plain-text value (GCP TRUE, a token, an IMDS 404 page) becomes a JSON document.
    parsed = { value: answer.body };
  }
  return { status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(withWrongTypes(parsed)) };
}

/** Far from any real DocumentIncarnation, so a flicker document never collides with a real one. */
const FLICKER_INCARNATION_OFFSET = 1_000_000;

/** Alibaba's and Tencent's termination-time item with no reclaim scheduled. */
function quietTermination(answer: Answer, path: string): Answer | undefined {
  return answer.status === 200 && path.endsWith('/spot/termination-time') ? { status: 404, headers: { 'content-type': 'text/plain' }, body: 'Not Found' } : undefined;
}

/**
 * The cloud's "nothing pending" answer for an answer that shows a notice; undefined when
 * the answer shows none (then there is nothing to hide).
 */
const QUIET: Record<ProviderName, Transform> = {
  aws: (answer, path) =>
    answer.status === 200 && /\/meta-data\/(spot\/|events\/)/.test(path)
      ? { status: 404, headers: { 'Content-Type': 'text/html' }, body: errorPage(404, 'Not Found') }
      : undefined,
  alibaba: quietTermination,
  tencent: quietTermination,
  gcp: (answer, path) => {
    const quiet = path.endsWith('/instance/preempted') ? 'FALSE' : path.endsWith('/instance/maintenance-event') ? 'NONE' : path.endsWith('/instance/upcoming-maintenance') ? '{}' : undefined;
    if (answer.status !== 200 || quiet === undefined || answer.body === quiet) return undefined;
    // A fresh ETag: the agent's next hanging GET then returns at once with the real value.
    return { status: 200, headers: { 'Content-Type': 'application/text', ETag: `flicker-${randomBytes(6).toString('hex')}` }, body: quiet };
  },
  azure: (answer, path) => {
    if (answer.status !== 200 || !path.endsWith('/scheduledevents')) return undefined;
    let document: { DocumentIncarnation?: unknown; Events?: unknown };
    try {
      document = JSON.parse(answer.body) as typeof document;
    } catch {
      return undefined;
    }
    if (!Array.isArray(document.Events) || document.Events.length === 0 || typeof document.DocumentIncarnation !== 'number') return undefined;
    const body = JSON.stringify({ DocumentIncarnation: document.DocumentIncarnation + FLICKER_INCARNATION_OFFSET, Events: [] });
    return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body };
  },
};

/**
 * A notice's time recomputed on every answer, `aheadMs` after the request (a rebalance's
 * noticeTime: the request time itself); undefined when the answer shows no notice.
 */
function retime(provider: ProviderName, aheadMs: number, now = Date.now()): Transform {
  return (answer, path) => {
    if (answer.status !== 200) return undefined;
    if (path.endsWith('/spot/termination-time')) {
      const time = new Date(now + aheadMs);
      return { ...answer, body: provider === 'tencent' ? tencentTime(time) : isoSeconds(time) };
    }
    const field = path.endsWith('/spot/instance-action') ? 'time' : path.endsWith('/events/recommendations/rebalance') ? 'noticeTime' : undefined;
    if (field === undefined) return undefined;
    try {
      const document = JSON.parse(answer.body) as Record<string, unknown>;
      return { ...answer, body: JSON.stringify({ ...document, [field]: isoSeconds(new Date(field === 'time' ? now + aheadMs : now)) }) };
    } catch {
      return undefined;
    }
  };
}

/**
 * Applies a fault spec to metadata requests. Each request draws the spec's request faults
 * in order, each with its own chance; the first that hits shapes the answer, and a request
 * that none hits is served by the cloud unchanged. Counts what it did.
 */
export class FaultLayer {
  private spec: FaultSpec;
  /** Faults applied so far, by name (a flicker counts only when it hid a notice). */
  readonly applied = new Map<FaultName, number>();

  constructor(
    private readonly provider: ProviderName,
    spec: FaultSpec = NO_FAULTS,
    private readonly random: () => number = Math.random,
  ) {
    this.spec = spec;
  }

  get current(): FaultSpec {
    return this.spec;
  }

  set(spec: FaultSpec): void {
    this.spec = spec;
  }

  /** Serves one metadata request; `handle` asks the cloud for its real answer. */
  serve(request: IncomingMessage, response: ServerResponse, handle: () => void): void {
    const fault = this.draw(request);
    if (fault === undefined) return handle();
    const path = (request.url ?? '/').split('?')[0]!;
    const headers = SERVICE_HEADERS[this.provider];
    const answer = (status: number, body: string, extra: OutgoingHttpHeaders = {}) => {
      this.count(fault.name);
      send(response, { status, headers: { ...headers, 'Content-Type': 'text/html', ...extra }, body });
    };
    const rewrite = (transform: Transform) =>
      captureAnswer(response, handle, (real) => {
        const changed = transform(real, path);
        if (changed) this.count(fault.name);
        send(response, changed ? { ...changed, headers: { ...headers, ...changed.headers } } : real);
      });
    switch (fault.name) {
      case '500':
        return answer(500, errorPage(500, 'Internal Server Error'));
      case '503':
        return answer(503, errorPage(503, 'Service Unavailable'));
      case '429':
        return answer(429, errorPage(429, 'Too Many Requests'));
      case '429-retry-after':
        return answer(429, errorPage(429, 'Too Many Requests'), { 'Retry-After': String(Math.ceil((fault.paramMs ?? 0) / 1000)) });
      case '401':
        return answer(401, errorPage(401, 'Unauthorized'));
      case 'html':
        return answer(200, PROXY_PAGE, { Server: 'squid' });
      case 'reset':
        this.count(fault.name);
        request.socket.destroy();
        return;
      case 'hang':
      case 'hang-token':
        // Nothing is written; the socket stays open until the client gives up or the simulator closes.
        this.count(fault.name);
        return;
      case 'drip':
        return captureAnswer(response, handle, (real) => {
          this.count(fault.name);
          drip(response, real, fault.paramMs ?? 200);
        });
      case 'truncated':
        return rewrite(truncate);
      case 'wrong-types':
        return rewrite(wrongTypes);
      case 'flicker':
        return rewrite(QUIET[this.provider]);
      case 'retime':
        return rewrite(retime(this.provider, fault.paramMs ?? 0));
      case 'early-return':
        return this.withoutWait(request, handle);
      case 'endless':
        this.count(fault.name);
        return endless(response, headers);
      case 'redirect':
        return answer(302, errorPage(302, 'Found'), { Location: `http://127.0.0.2:${request.socket.localPort}${request.url ?? '/'}` });
      default:
        return handle();
    }
  }

  /** A triggered notice, with its time moved when a notice fault hits. */
  adjustTrigger(trigger: TriggerSpec, now = Date.now()): TriggerSpec {
    for (const entry of this.spec.entries) {
      if (!NOTICE_FAULTS.has(entry.name) || this.random() >= entry.rate) continue;
      this.count(entry.name);
      const offset = entry.name === 'notice-past' ? -(entry.paramMs ?? 0) : (entry.paramMs ?? 0);
      return { ...trigger, time: new Date(now + offset).toISOString() };
    }
    return trigger;
  }

  /** A hanging GET served as a plain GET: the current value at once, whatever `last_etag` says. */
  private withoutWait(request: IncomingMessage, handle: () => void): void {
    const url = new URL(request.url ?? '/', 'http://simulator');
    if (url.searchParams.get('wait_for_change') === 'true') {
      this.count('early-return');
      url.searchParams.delete('wait_for_change');
      request.url = url.pathname + url.search;
    }
    handle();
  }

  private draw(request: IncomingMessage): FaultEntry | undefined {
    const tokenPut = isTokenPut(request);
    for (const entry of this.spec.entries) {
      if (NOTICE_FAULTS.has(entry.name)) continue;
      if (entry.name === 'hang-token' && !tokenPut) continue;
      if (entry.name === '401' && tokenPut) continue;
      if (this.random() < entry.rate) return entry;
    }
    return undefined;
  }

  private count(name: FaultName): void {
    this.applied.set(name, (this.applied.get(name) ?? 0) + 1);
  }
}
