import { z } from 'zod';
import { showValue } from '../config/fields.js';
import { MetadataError } from './source-report.js';

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

function parseJson(source: string, body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new MetadataError('ERR_METADATA_BODY', `${source}: body is not JSON (got ${showValue(body)})`, 200);
  }
}

function shapeError(source: string, expected: string, value: unknown): MetadataError {
  return new MetadataError('ERR_METADATA_BODY', `${source}: expected ${expected}, got ${showValue(value)}`, 200);
}

export const SPOT_ACTIONS = ['terminate', 'stop', 'hibernate'] as const;
export type SpotAction = (typeof SPOT_ACTIONS)[number];

export interface InstanceAction {
  action: SpotAction;
  /** The time exactly as IMDS gave it: part of the notice id. */
  timeText: string;
  time: Date;
  raw: unknown;
}

const instanceActionShape = z.object({ action: z.enum(SPOT_ACTIONS), time: z.string() });

export function parseInstanceAction(body: string): InstanceAction {
  const source = 'spot/instance-action';
  const raw = parseJson(source, body);
  const parsed = instanceActionShape.safeParse(raw);
  if (!parsed.success) throw shapeError(source, '{"action": "terminate"|"stop"|"hibernate", "time": "<ISO time>"}', raw);
  const time = parseIsoTime(parsed.data.time);
  if (!time) throw shapeError(source, 'an ISO 8601 time such as 2017-09-18T08:22:00Z in "time"', parsed.data.time);
  return { action: parsed.data.action, timeText: parsed.data.time, time, raw };
}

export interface RebalanceRecommendation {
  noticeTimeText: string;
  noticeTime: Date;
  raw: unknown;
}

const rebalanceShape = z.object({ noticeTime: z.string() });

export function parseRebalance(body: string): RebalanceRecommendation {
  const source = 'events/recommendations/rebalance';
  const raw = parseJson(source, body);
  const parsed = rebalanceShape.safeParse(raw);
  if (!parsed.success) throw shapeError(source, '{"noticeTime": "<ISO time>"}', raw);
  const noticeTime = parseIsoTime(parsed.data.noticeTime);
  if (!noticeTime) throw shapeError(source, 'an ISO 8601 time such as 2020-10-27T08:22:00Z in "noticeTime"', parsed.data.noticeTime);
  return { noticeTimeText: parsed.data.noticeTime, noticeTime, raw };
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
  const raw = parseJson(source, body);
  const parsed = maintenanceShape.safeParse(raw);
  if (!parsed.success) throw shapeError(source, 'a JSON array of events with "EventId" and "NotBefore"', raw);
  return parsed.data.map((event, index) => {
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
