import { z } from 'zod';
import { MetadataError } from '../../lib/errors.js';
import { showValue } from '../../lib/format.js';

/** Parsers for the IMDS interruption payloads. Each throws ERR_METADATA_BODY on garbage. */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const AWS_EVENT_DATE = /^(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/** `21 Jan 2019 09:00:43 GMT`, the form of maintenance event dates; undefined if not that. */
export function parseAwsEventDate(text: string): Date | undefined {
  const match = AWS_EVENT_DATE.exec(text.trim());
  if (!match) return undefined;
  const month = MONTHS.indexOf(match[2]!);
  const [day, year, hour, minute, second] = [match[1], match[3], match[4], match[5], match[6]].map(Number) as [number, number, number, number, number];
  if (month < 0) return undefined;
  const date = new Date(Date.UTC(year, month, day, hour, minute, second));
  // Date.UTC rolls 31 Feb over into March and 25:00 into the next day: reject those.
  const roundTrips =
    date.getUTCMonth() === month && date.getUTCDate() === day && date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second;
  return roundTrips ? date : undefined;
}

/** `2017-09-18T08:22:00Z` (ISO 8601 with a zone), the form of spot and rebalance times. */
export function parseIsoTime(text: string): Date | undefined {
  if (!ISO_TIME.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function shapeError(source: string, expected: string, value: unknown): MetadataError {
  return new MetadataError('ERR_METADATA_BODY', `${source}: expected ${expected}, got ${showValue(value)}`, 200);
}

/** The body as JSON of the given shape (`expected` says it in words), and the JSON as sent. */
function parseShaped<T>(source: string, body: string, shape: z.ZodType<T>, expected: string): { data: T; raw: unknown } {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new MetadataError('ERR_METADATA_BODY', `${source}: body is not JSON (got ${showValue(body)})`, 200);
  }
  const parsed = shape.safeParse(raw);
  if (!parsed.success) throw shapeError(source, expected, raw);
  return { data: parsed.data, raw };
}

/** An ISO time field of a parsed body; `example` is a time of the form expected there. */
function isoTimeField(source: string, field: string, text: string, example: string): Date {
  const time = parseIsoTime(text);
  if (!time) throw shapeError(source, `an ISO 8601 time such as ${example} in "${field}"`, text);
  return time;
}

export const SPOT_ACTIONS = ['terminate', 'stop', 'hibernate'] as const;
export type SpotAction = (typeof SPOT_ACTIONS)[number];

export interface InstanceAction {
  action: SpotAction;
  time: Date;
  raw: unknown;
}

const instanceActionShape = z.object({ action: z.enum(SPOT_ACTIONS), time: z.string() });

export function parseInstanceAction(body: string): InstanceAction {
  const source = 'spot/instance-action';
  const { data, raw } = parseShaped(source, body, instanceActionShape, '{"action": "terminate"|"stop"|"hibernate", "time": "<ISO time>"}');
  return { action: data.action, time: isoTimeField(source, 'time', data.time, '2017-09-18T08:22:00Z'), raw };
}

export interface RebalanceRecommendation {
  noticeTime: Date;
  raw: unknown;
}

const rebalanceShape = z.object({ noticeTime: z.string() });

export function parseRebalance(body: string): RebalanceRecommendation {
  const source = 'events/recommendations/rebalance';
  const { data, raw } = parseShaped(source, body, rebalanceShape, '{"noticeTime": "<ISO time>"}');
  return { noticeTime: isoTimeField(source, 'noticeTime', data.noticeTime, '2020-10-27T08:22:00Z'), raw };
}

export interface MaintenanceEvent {
  eventId: string;
  code: string;
  state: string;
  notBefore: Date;
  /** canceled / completed: AWS withdrew the event or it is over. */
  ended: boolean;
  raw: unknown;
}

const maintenanceShape = z.array(
  z.looseObject({
    EventId: z.string().min(1),
    NotBefore: z.string(),
    Code: z.string().optional(),
    State: z.string().optional(),
  }),
);

export function parseMaintenance(body: string): MaintenanceEvent[] {
  const source = 'events/maintenance/scheduled';
  if (body.trim() === '') return [];
  const { data, raw } = parseShaped(source, body, maintenanceShape, 'a JSON array of events with "EventId" and "NotBefore"');
  return data.map((event, index) => {
    const notBefore = parseAwsEventDate(event.NotBefore);
    if (!notBefore) throw shapeError(source, `a date such as "21 Jan 2019 09:00:43 GMT" in [${index}].NotBefore`, event.NotBefore);
    const state = (event.State ?? 'active').toLowerCase();
    return {
      eventId: event.EventId,
      code: event.Code ?? 'unknown',
      state,
      notBefore,
      ended: state === 'canceled' || state === 'cancelled' || state === 'completed',
      raw: (raw as unknown[])[index],
    };
  });
}
