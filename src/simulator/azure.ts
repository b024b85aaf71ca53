import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PreemptdError } from '../lib/errors.js';
import type { NoticeKind } from '../notice/notice.js';
import { cannotShow, type SimulatedCloud, type SimulatedCloudOptions, type TriggerSpec } from './cloud.js';

const EVENTS_PATH = '/metadata/scheduledevents';
const INSTANCE_PATH = '/metadata/instance';
/** Azure's documented limit: 5 requests per second per VM, then 429. */
const RATE_LIMIT = 5;
const RATE_WINDOW_MS = 1000;

/**
 * The api-versions IMDS accepts per endpoint, oldest first; anything else gets 400 with the
 * newest three, as the real service answers.
 */
const API_VERSIONS: Record<string, readonly string[]> = {
  [EVENTS_PATH]: ['2017-03-01', '2017-08-01', '2017-11-01', '2019-01-01', '2019-04-01', '2019-08-01', '2020-07-01'],
  [INSTANCE_PATH]: [
    '2017-03-01', '2017-04-02', '2017-08-01', '2017-10-01', '2017-12-01', '2018-02-01', '2018-04-02', '2018-10-01', '2019-02-01',
    '2019-03-11', '2019-04-30', '2019-06-01', '2019-06-04', '2019-08-01', '2019-08-15', '2019-11-01', '2020-06-01', '2020-07-15',
    '2020-09-01', '2020-10-01', '2020-12-01', '2021-01-01', '2021-02-01', '2021-03-01', '2021-05-01', '2021-10-01', '2021-11-01',
    '2021-11-15', '2021-12-13', '2023-07-01', '2023-11-15', '2024-03-15', '2024-07-17',
  ],
};

/** The notice kinds Azure Scheduled Events can show, with their EventType and minimum notice. */
const EVENT_TYPES: Partial<Record<NoticeKind, { type: string; leadMs: number; durationSeconds: number }>> = {
  preempt: { type: 'Preempt', leadMs: 30_000, durationSeconds: -1 },
  terminate: { type: 'Terminate', leadMs: 5 * 60_000, durationSeconds: -1 },
  reboot: { type: 'Reboot', leadMs: 15 * 60_000, durationSeconds: -1 },
  redeploy: { type: 'Redeploy', leadMs: 10 * 60_000, durationSeconds: -1 },
  freeze: { type: 'Freeze', leadMs: 15 * 60_000, durationSeconds: 5 },
};

export interface SimulatedAzureEvent {
  EventId: string;
  EventStatus: 'Scheduled' | 'Started';
  EventType: string;
  ResourceType: 'VirtualMachine';
  Resources: string[];
  NotBefore: string;
  Description: string;
  EventSource: 'Platform';
  DurationInSeconds: number;
}

/**
 * Azure Instance Metadata Service with Scheduled Events, as a VM sees it: the `Metadata:
 * true` header and an api-version are required, a request carrying X-Forwarded-For is
 * refused, and more than 5 requests in any second from one client get 429.
 */
export class SimulatedAzure implements SimulatedCloud {
  readonly provider = 'azure' as const;
  readonly vmName: string;
  readonly vmId: string;
  /** Every entry of every StartRequests POST received, in order (tests check acknowledgements). */
  readonly startRequests: Array<{ EventId: string }> = [];
  private incarnation = 1;
  private events: SimulatedAzureEvent[] = [];
  /** Accepted request times per client address, for the sliding-window rate limit. */
  private readonly recentRequests = new Map<string, number[]>();

  constructor(options: SimulatedCloudOptions) {
    this.vmName = options.instanceName ?? 'preemptd-sim-vm';
    this.vmId = options.instanceId ?? '02aab8a4-74ef-476e-8182-f6d2ba4166a6';
  }

  /** The Scheduled Events document as it stands. */
  document(): { DocumentIncarnation: number; Events: SimulatedAzureEvent[] } {
    return { DocumentIncarnation: this.incarnation, Events: this.events };
  }

  handle(request: IncomingMessage, response: ServerResponse, body: string): void {
    const url = new URL(request.url ?? '/', 'http://simulator');
    if (url.pathname !== EVENTS_PATH && url.pathname !== INSTANCE_PATH) return reply(response, 404, { error: 'Not found' });
    if (request.headers['x-forwarded-for'] !== undefined) {
      return reply(response, 400, { error: 'Bad request. Requests through a proxy (X-Forwarded-For) are refused' });
    }
    if (request.headers.metadata !== 'true') return reply(response, 400, { error: 'Bad request. Required metadata header not specified' });
    const versions = API_VERSIONS[url.pathname]!;
    const version = url.searchParams.get('api-version');
    if (version === null || !versions.includes(version)) {
      const problem = version === null ? 'api-version was not specified in the request' : `api-version ${version} is invalid`;
      return reply(response, 400, { error: `Bad request. ${problem}. For more information refer to aka.ms/azureimds`, 'newest-versions': versions.slice(-3).reverse() });
    }
    if (!this.admit(request.socket.remoteAddress ?? 'unknown')) return reply(response, 429, { error: 'Too many requests' });

    if (url.pathname === INSTANCE_PATH) {
      if (request.method !== 'GET') return reply(response, 405, { error: 'Method not allowed' });
      return reply(response, 200, this.instanceDocument());
    }
    if (request.method === 'GET') return reply(response, 200, this.document());
    if (request.method === 'POST') return this.acknowledge(response, body);
    reply(response, 405, { error: 'Method not allowed' });
  }

  trigger(spec: TriggerSpec): void {
    const eventType = EVENT_TYPES[spec.kind];
    if (!eventType) throw cannotShow(this.provider, spec.kind);
    const notBefore = spec.time ? new Date(spec.time) : new Date(Date.now() + (spec.leadMs ?? eventType.leadMs));
    if (Number.isNaN(notBefore.getTime())) throw new PreemptdError('ERR_USAGE', `trigger time ${JSON.stringify(spec.time)} is not a date; expected ISO 8601`);
    this.events = [
      {
        EventId: randomUUID().toUpperCase(),
        EventStatus: 'Scheduled',
        EventType: eventType.type,
        ResourceType: 'VirtualMachine',
        Resources: spec.resources ?? [this.vmName],
        NotBefore: notBefore.toUTCString(),
        Description: `Simulated ${eventType.type} event`,
        EventSource: 'Platform',
        DurationInSeconds: eventType.durationSeconds,
      },
    ];
    this.incarnation += 1;
  }

  clear(): void {
    if (this.events.length === 0) return;
    this.events = [];
    this.incarnation += 1;
  }

  close(): void {}

  private admit(client: string): boolean {
    const now = performance.now();
    const times = (this.recentRequests.get(client) ?? []).filter((time) => now - time < RATE_WINDOW_MS);
    const admitted = times.length < RATE_LIMIT;
    if (admitted) times.push(now);
    this.recentRequests.set(client, times);
    return admitted;
  }

  /** A StartRequests POST: recorded, and each named event moves to Started (NotBefore blank). */
  private acknowledge(response: ServerResponse, body: string): void {
    let requests: Array<{ EventId: string }>;
    try {
      requests = parseStartRequests(body);
    } catch (error) {
      return reply(response, 400, { error: `Bad request. ${(error as Error).message}` });
    }
    this.startRequests.push(...requests);
    let changed = false;
    for (const event of this.events) {
      if (event.EventStatus === 'Scheduled' && requests.some((request) => request.EventId === event.EventId)) {
        event.EventStatus = 'Started';
        event.NotBefore = '';
        changed = true;
      }
    }
    if (changed) this.incarnation += 1;
    response.writeHead(200).end();
  }

  private instanceDocument(): unknown {
    return {
      compute: {
        name: this.vmName,
        vmId: this.vmId,
        vmSize: 'Standard_NC6s_v3',
        location: 'westeurope',
        zone: '1',
        priority: 'Spot',
        osProfile: { computerName: this.vmName },
      },
      network: { interface: [] },
    };
  }
}

function parseStartRequests(body: string): Array<{ EventId: string }> {
  const parsed = JSON.parse(body) as { StartRequests?: unknown };
  const list = parsed?.StartRequests;
  if (!Array.isArray(list) || !list.every((entry) => typeof (entry as { EventId?: unknown })?.EventId === 'string')) {
    throw new PreemptdError('ERR_USAGE', 'expected {"StartRequests":[{"EventId":"..."}]}');
  }
  return list.map((entry: { EventId: string }) => ({ EventId: entry.EventId }));
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}
