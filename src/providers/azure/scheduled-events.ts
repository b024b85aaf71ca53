import { z } from 'zod';
import { MetadataError } from '../../lib/errors.js';
import { showValue } from '../../lib/format.js';
import type { Logger } from '../../lib/log.js';
import { noticeId, type InstanceFacts, type Notice, type NoticeKind } from '../../notice/notice.js';
import type { ProviderEvent } from '../types.js';

export const AZURE_METADATA_URL = 'http://169.254.169.254';
export const SCHEDULED_EVENTS_PATH = '/metadata/scheduledevents?api-version=2020-07-01';
export const AZURE_INSTANCE_PATH = '/metadata/instance?api-version=2021-02-01';
/** The first call switches Scheduled Events on, which can take about 2 minutes. */
export const AZURE_FIRST_CALL_TIMEOUT_MS = 120_000;
/** Every Azure IMDS request needs it; without it: 400. */
export const METADATA_HEADER = { Metadata: 'true' } as const;
export const ACK_ATTEMPTS = 3;

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
