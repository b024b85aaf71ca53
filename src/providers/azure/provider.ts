import { z } from 'zod';
import { METADATA_BACKOFF, backoffDelay, jitteredInterval, sleep } from '../../lib/backoff.js';
import { showValue } from '../../config/fields.js';
import { PreemptdError, errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { noticeId, type InstanceFacts, type Notice, type NoticeKind } from '../../notice/notice.js';
import { MetadataClient, MetadataRequestError, type MetadataResponse } from '../metadata/client.js';
import { pollSource } from '../metadata/poll-loop.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';
import { MetadataError, SourceReport } from '../metadata/source-report.js';

export const AZURE_METADATA_URL = 'http://169.254.169.254';
export const SCHEDULED_EVENTS_PATH = '/metadata/scheduledevents?api-version=2020-07-01';
export const AZURE_INSTANCE_PATH = '/metadata/instance?api-version=2021-02-01';
/** The first call switches Scheduled Events on, which can take about 2 minutes. */
export const AZURE_FIRST_CALL_TIMEOUT_MS = 120_000;
/** Every Azure IMDS request needs it; without it: 400. */
const METADATA_HEADER = { Metadata: 'true' } as const;
const ACK_ATTEMPTS = 3;

export const FIRST_CALL_MESSAGE =
  'waiting for the first Azure Scheduled Events answer: the first call switches the service on and can take up to about 2 minutes; this wait is expected';

/** Azure EventType → notice kind. Unknown types are logged once and ignored. */
export const AZURE_EVENT_KINDS: ReadonlyMap<string, NoticeKind> = new Map([
  ['Preempt', 'preempt'],
  ['Terminate', 'terminate'],
  ['Reboot', 'reboot'],
  ['Redeploy', 'redeploy'],
  ['Freeze', 'freeze'],
]);

/**
 * The least notice Azure promises per kind (Terminate: 5 to 15 min, configurable, so 5).
 * Used as the deadline of a Scheduled event whose NotBefore is empty.
 */
export const AZURE_MINIMUM_NOTICE_MS: Readonly<Partial<Record<NoticeKind, number>>> = {
  preempt: 30_000,
  terminate: 5 * 60_000,
  reboot: 15 * 60_000,
  redeploy: 10 * 60_000,
  freeze: 15 * 60_000,
};

const eventShape = z.looseObject({
  EventId: z.string().min(1),
  EventType: z.string(),
  EventStatus: z.string(),
  Resources: z.array(z.string()),
  NotBefore: z.string().optional(),
});
const documentShape = z.looseObject({ DocumentIncarnation: z.number(), Events: z.array(eventShape) });

export interface ScheduledEvent {
  eventId: string;
  type: string;
  status: string;
  resources: string[];
  /** RFC 1123 date, or '' (Started events, and sometimes Scheduled ones). */
  notBefore: string;
  /** The event exactly as Azure sent it: the notice's `raw`, and what acknowledge reads. */
  raw: unknown;
}

export interface ScheduledEventsDocument {
  incarnation: number;
  events: ScheduledEvent[];
}

/** Parses a Scheduled Events body; throws ERR_METADATA_BODY on anything else. */
export function parseScheduledEvents(body: string): ScheduledEventsDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new MetadataError('ERR_METADATA_BODY', `scheduledevents: body is not JSON (got ${showValue(body)})`, 200);
  }
  const parsed = documentShape.safeParse(raw);
  if (!parsed.success) {
    throw new MetadataError(
      'ERR_METADATA_BODY',
      `scheduledevents: expected {"DocumentIncarnation": <number>, "Events": [{"EventId", "EventType", "EventStatus", "Resources", "NotBefore"}]}, got ${showValue(raw)}`,
      200,
    );
  }
  const rawEvents = (raw as { Events: unknown[] }).Events;
  return {
    incarnation: parsed.data.DocumentIncarnation,
    events: parsed.data.Events.map((event, index) => ({
      eventId: event.EventId,
      type: event.EventType,
      status: event.EventStatus,
      resources: event.Resources,
      notBefore: (event.NotBefore ?? '').trim(),
      raw: rawEvents[index],
    })),
  };
}

/**
 * When the cloud acts: NotBefore when it holds a date. Without one, a Started event is
 * under way now (the plan gets the executor's floor budget), and a Scheduled one gets the
 * least notice Azure promises for its kind.
 */
export function eventDeadline(event: ScheduledEvent, kind: NoticeKind, detectedAt: Date): Date {
  const notBefore = event.notBefore === '' ? NaN : Date.parse(event.notBefore);
  if (!Number.isNaN(notBefore)) return new Date(notBefore);
  if (event.status === 'Started') return detectedAt;
  return new Date(detectedAt.getTime() + (AZURE_MINIMUM_NOTICE_MS[kind] ?? 0));
}

/**
 * Turns successive Scheduled Events bodies into notices and withdrawals for one VM. An
 * identical body is not parsed again; a parsed document with the DocumentIncarnation
 * already seen is not looked at (Azure bumps it on every change). Events for other VMs of
 * the availability set are ignored; an event of ours that leaves the document is withdrawn.
 */
export class ScheduledEventsTracker {
  private lastBody: string | undefined;
  private incarnation: number | undefined;
  /** EventId → notice id of events yielded and still in the document. */
  private readonly shown = new Map<string, string>();
  /** Withdrawn EventIds: never yielded again in this process. */
  private readonly done = new Set<string>();
  private readonly warned = new Set<string>();
  private readonly vmName: string;

  constructor(
    vmName: string,
    private readonly instance: InstanceFacts,
    private readonly log: Logger,
  ) {
    // Azure resource names are case-insensitive.
    this.vmName = vmName.toLowerCase();
  }

  /** Throws MetadataError on a malformed body (nothing is remembered then). */
  update(body: string, now: Date): ProviderEvent[] {
    if (body === this.lastBody) return [];
    const document = parseScheduledEvents(body);
    this.lastBody = body;
    if (document.incarnation === this.incarnation) return [];
    this.incarnation = document.incarnation;

    const found: ProviderEvent[] = [];
    const present = new Set<string>();
    for (const event of document.events) {
      if (!event.resources.some((resource) => resource.toLowerCase() === this.vmName)) continue;
      const kind = AZURE_EVENT_KINDS.get(event.type);
      if (kind === undefined) {
        this.warnOnce(`type:${event.type}`, { eventId: event.eventId, eventType: event.type }, `Azure event type ${showValue(event.type)} is unknown; ignoring it`);
        continue;
      }
      present.add(event.eventId);
      if (this.shown.has(event.eventId) || this.done.has(event.eventId)) continue;
      if (event.notBefore !== '' && Number.isNaN(Date.parse(event.notBefore))) {
        this.warnOnce(`date:${event.eventId}`, { eventId: event.eventId, notBefore: event.notBefore }, 'Azure event NotBefore is not a date; using the minimum notice for its type');
      }
      const notice: Notice = {
        id: noticeId('azure', kind, event.eventId),
        provider: 'azure',
        kind,
        deadline: eventDeadline(event, kind, now),
        detectedAt: now,
        instance: this.instance,
        raw: event.raw,
      };
      this.shown.set(event.eventId, notice.id);
      found.push({ type: 'notice', notice });
    }
    for (const [eventId, id] of this.shown) {
      if (present.has(eventId)) continue;
      this.shown.delete(eventId);
      this.done.add(eventId);
      found.push({ type: 'withdrawn', noticeId: id, reason: `Azure event ${eventId} left Scheduled Events (finished or cancelled)` });
    }
    return found;
  }

  private warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(fields, message);
  }
}

const instanceShape = z.looseObject({
  compute: z.looseObject({
    name: z.string().min(1),
    vmId: z.string().optional(),
    vmSize: z.string().optional(),
    location: z.string().optional(),
    zone: z.string().optional(),
    priority: z.string().optional(),
    osProfile: z.looseObject({ computerName: z.string().optional() }).optional(),
  }),
});

/** Parses the instance document; `name` is required (events are matched against it). */
export function parseAzureInstance(body: string): InstanceFacts & { name: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new MetadataError('ERR_METADATA_BODY', `instance: body is not JSON (got ${showValue(body)})`, 200);
  }
  const parsed = instanceShape.safeParse(raw);
  if (!parsed.success) throw new MetadataError('ERR_METADATA_BODY', `instance: expected {"compute": {"name": "<vm name>", ...}}, got ${showValue(raw)}`, 200);
  const { name, vmId, vmSize, location, zone, priority, osProfile } = parsed.data.compute;
  const facts: InstanceFacts & { name: string } = { name };
  // Azure sends '' for what does not apply (zone outside availability zones).
  const set = (field: keyof InstanceFacts, value: string | undefined) => {
    if (value) facts[field] = value;
  };
  set('id', vmId);
  set('type', vmSize);
  set('region', location);
  set('zone', zone);
  set('lifecycle', priority?.toLowerCase());
  set('hostname', osProfile?.computerName);
  return facts;
}

/**
 * Detection probe: only Azure IMDS answers the instance document with a `compute.name`
 * (and only with the Metadata header). Resolves to what it saw, or undefined.
 */
export async function probeAzure(client: MetadataClient, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  const response = await client.request({ path: AZURE_INSTANCE_PATH, headers: METADATA_HEADER, timeoutMs, signal });
  if (response.status !== 200) return undefined;
  try {
    parseAzureInstance(response.body);
    return 'GET /metadata/instance answered an instance document with compute.name';
  } catch {
    return undefined;
  }
}

/** A non-200 answer, described with what usually causes it. */
function httpFailure(source: string, response: MetadataResponse): MetadataError {
  const hints: Record<number, string> = {
    400: 'request refused as malformed; a proxy that adds X-Forwarded-For or drops the Metadata header is the usual cause (bypass proxies for 169.254.169.254)',
    429: 'rate limited (Azure allows 5 requests per second per VM, shared by every client on it)',
    410: 'service not ready yet',
    500: 'service error',
  };
  const hint = hints[response.status];
  return new MetadataError('ERR_METADATA_HTTP', `${source}: HTTP ${response.status}${hint ? ` (${hint})` : ''}`, response.status);
}

/**
 * Azure Scheduled Events. Reads the VM's name from the instance document, then polls the
 * events document every poll interval (±jitter), backing off on 429, 410, 500 and network
 * failures. Until the first answer arrives each call may take `azure.firstCallTimeoutMs`.
 * `acknowledge` POSTs StartRequests so Azure may proceed before NotBefore.
 */
export class AzureProvider implements Provider {
  readonly name = 'azure' as const;
  private readonly client: MetadataClient;
  private readonly firstCallTimeoutMs: number;
  private facts: (InstanceFacts & { name: string }) | undefined;

  constructor(private readonly options: ProviderOptions) {
    this.client = new MetadataClient(options.baseUrl);
    this.firstCallTimeoutMs = options.azure?.firstCallTimeoutMs ?? AZURE_FIRST_CALL_TIMEOUT_MS;
  }

  /** Cached once read; throws MetadataError / MetadataRequestError when it cannot be read. */
  async instanceFacts(signal: AbortSignal): Promise<InstanceFacts> {
    this.facts ??= parseAzureInstance(await this.get('instance', AZURE_INSTANCE_PATH, this.options.requestTimeoutMs, signal));
    return this.facts;
  }

  watch(context: WatchContext): AsyncIterable<ProviderEvent> {
    return this.run(context);
  }

  async acknowledge(notice: Notice, signal: AbortSignal): Promise<void> {
    const eventId = (notice.raw as { EventId?: unknown } | null)?.EventId;
    if (notice.provider !== 'azure' || typeof eventId !== 'string') {
      throw new PreemptdError('ERR_USAGE', `notice ${notice.id} is not an Azure Scheduled Event; only those can be acknowledged`);
    }
    const body = JSON.stringify({ StartRequests: [{ EventId: eventId }] });
    for (let attempt = 1; ; attempt += 1) {
      let failure: PreemptdError;
      try {
        const response = await this.client.request({
          method: 'POST',
          path: SCHEDULED_EVENTS_PATH,
          headers: { ...METADATA_HEADER, 'content-type': 'application/json' },
          body,
          timeoutMs: this.options.requestTimeoutMs,
          signal,
        });
        if (response.status === 200) return;
        failure = httpFailure(`acknowledging event ${eventId}`, response);
        if (response.status === 400) throw failure;
      } catch (error) {
        if (error instanceof MetadataError || signal.aborted) throw error;
        const code = error instanceof MetadataRequestError && error.kind === 'timeout' ? 'ERR_METADATA_TIMEOUT' : 'ERR_METADATA_HTTP';
        failure = new PreemptdError(code, `acknowledging event ${eventId}: ${errorMessage(error)}`, { cause: error });
      }
      if (attempt >= ACK_ATTEMPTS) throw failure;
      await sleep(backoffDelay(attempt, METADATA_BACKOFF), signal);
    }
  }

  private async *run(context: WatchContext): AsyncGenerator<ProviderEvent> {
    try {
      const facts = await this.waitForFacts(context);
      if (!facts) return;
      yield* this.pollEvents(new ScheduledEventsTracker(facts.name, facts, context.log), context);
    } finally {
      this.client.close();
    }
  }

  /** The VM's name is needed to tell our events from our neighbours': retry until it is known. */
  private async waitForFacts(context: WatchContext): Promise<(InstanceFacts & { name: string }) | undefined> {
    const report = new SourceReport('instance', context);
    while (!context.signal.aborted) {
      const started = performance.now();
      try {
        await this.instanceFacts(context.signal);
        report.ok(performance.now() - started, 200);
        return this.facts;
      } catch (error) {
        if (context.signal.aborted) break;
        await sleep(backoffDelay(report.fail(error, performance.now() - started), METADATA_BACKOFF), context.signal);
      }
    }
    return undefined;
  }

  private pollEvents(tracker: ScheduledEventsTracker, context: WatchContext): AsyncGenerator<ProviderEvent> {
    let answered = false;
    context.log.info({ source: 'scheduledevents', timeoutMs: this.firstCallTimeoutMs }, FIRST_CALL_MESSAGE);
    return pollSource(
      {
        report: new SourceReport('scheduledevents', context),
        nextIntervalMs: () => jitteredInterval(this.options.pollIntervalMs),
        read: async (signal) => {
          const started = performance.now();
          const timeoutMs = answered ? this.options.requestTimeoutMs : this.firstCallTimeoutMs;
          const body = await this.get('scheduledevents', SCHEDULED_EVENTS_PATH, timeoutMs, signal);
          const found = tracker.update(body, new Date());
          if (!answered) context.log.info({ source: 'scheduledevents', ms: Math.round(performance.now() - started) }, 'Azure Scheduled Events answered');
          answered = true;
          return { status: 200, found };
        },
      },
      context.signal,
    );
  }

  /** A GET with the Metadata header; the body on 200, else a MetadataError. */
  private async get(source: string, path: string, timeoutMs: number, signal: AbortSignal): Promise<string> {
    const response = await this.client.request({ path, headers: METADATA_HEADER, timeoutMs, signal });
    if (response.status !== 200) throw httpFailure(source, response);
    return response.body;
  }
}
