import { z } from 'zod';
import { MetadataError } from '../../lib/errors.js';
import { showValue } from '../../lib/format.js';
import { noticeId } from '../../notice/notice.js';
import { parseIsoTime } from '../aws/payloads.js';
import type { Finding, WatchedKey } from './keys.js';

const SOURCE = 'instance/upcoming-maintenance';
/** The 503 body GCE gives while it has no maintenance notifications at all: nothing pending. */
const NOTHING_YET = /no notifications have been received yet/;
export const UPCOMING_STATUSES = ['PENDING', 'ONGOING', 'COMPLETE'] as const;

/** What `instance/upcoming-maintenance?alt=json` says. */
export type UpcomingMaintenance =
  | { status: 'none' }
  | { status: 'COMPLETE'; raw: unknown }
  | {
      status: 'PENDING' | 'ONGOING';
      /** SCHEDULED, UNSCHEDULED...: GCE's word, kept as given. */
      type: string;
      windowStart: Date;
      windowEnd: Date | undefined;
      latestWindowStart: Date | undefined;
      canReschedule: boolean | undefined;
      /** PLANNED_UPDATE, FAILURE_GPU_XID...; empty when GCE gives none. */
      reasons: string[];
      raw: unknown;
    };

const WORD = /^[A-Z][A-Z0-9_]*$/;
const word = z.string().regex(WORD);
const time = z.string().transform((text, context) => {
  const parsed = parseIsoTime(text);
  if (parsed) return parsed;
  context.addIssue({ code: 'custom', message: 'expected an RFC 3339 time' });
  return z.NEVER;
});
// Booleans in metadata JSON are sometimes strings: "true" / "false".
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((text) => text === 'true')]);

const shape = z.object({
  maintenance_status: z.enum(UPCOMING_STATUSES),
  type: word.optional(),
  window_start_time: time.optional(),
  window_end_time: time.optional(),
  latest_window_start_time: time.optional(),
  can_reschedule: flag.optional(),
  // One reason or several, as GCE's samples show both.
  maintenance_reasons: z.union([word.transform((reason) => [reason]), z.array(word)]).optional(),
});

const EXPECTED =
  '{} or NONE (nothing pending), or {"maintenance_status": "PENDING"|"ONGOING"|"COMPLETE", "window_start_time": "<RFC 3339 time>", "maintenance_reasons": ["PLANNED_UPDATE", ...], ...}';

/** A 200 body of `instance/upcoming-maintenance?alt=json`; throws ERR_METADATA_BODY on anything else. */
export function parseUpcomingMaintenance(body: string): UpcomingMaintenance {
  const text = body.trim();
  if (text === 'NONE') return { status: 'none' };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MetadataError('ERR_METADATA_BODY', `${SOURCE}: body is not JSON (got ${showValue(body)}); expected ${EXPECTED}`, 200);
  }
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && Object.keys(raw).length === 0) return { status: 'none' };
  const parsed = shape.safeParse(raw);
  if (!parsed.success) throw new MetadataError('ERR_METADATA_BODY', `${SOURCE}: expected ${EXPECTED}, got ${showValue(raw)}`, 200);
  const data = parsed.data;
  if (data.maintenance_status === 'COMPLETE') return { status: 'COMPLETE', raw };
  // The window start is the deadline; the latest start stands in when GCE gives only that.
  const windowStart = data.window_start_time ?? data.latest_window_start_time;
  if (!windowStart) throw new MetadataError('ERR_METADATA_BODY', `${SOURCE}: a ${data.maintenance_status} maintenance without "window_start_time" (got ${showValue(raw)})`, 200);
  return {
    status: data.maintenance_status,
    type: data.type ?? 'SCHEDULED',
    windowStart,
    windowEnd: data.window_end_time,
    latestWindowStart: data.latest_window_start_time,
    canReschedule: data.can_reschedule,
    reasons: data.maintenance_reasons ?? [],
    raw,
  };
}

/**
 * How soon after it disappeared an upcoming maintenance that comes back (same type and
 * reasons) is the same one: a flicker of the metadata server, not a new maintenance.
 */
const FLAP_MS = 60_000;

/**
 * `instance/upcoming-maintenance`: an advisory `maintenance` notice due at the window start,
 * withdrawn when the maintenance completes or nothing is pending any more. A 404 (a machine
 * family without the key) and any other failed read say nothing: never a withdrawal.
 *
 * GCE gives no event id and may move the window, so an episode's id is what cannot change
 * within it: the boot, the type, the reasons and how many episodes this process saw end
 * before it. A restart during an episode keeps its id; the window moving re-sends the
 * notice with the new deadline under the same id; one that disappears and comes back
 * within FLAP_MS is the same episode.
 */
export function upcomingMaintenanceKey(boot: string): WatchedKey {
  let ended = 0;
  let episode: { identity: string; what: string; shown: string; goneAt?: number } | undefined;
  return {
    path: SOURCE,
    query: 'alt=json',
    accepts: (status, body) => status === 404 || (status === 503 && NOTHING_YET.test(body)),
    interpret({ status, value, etag }, now): Finding[] {
      if (status === 404) return [];
      const upcoming = status === 503 ? ({ status: 'none' } as const) : parseUpcomingMaintenance(value);
      if (upcoming.status === 'none' || upcoming.status === 'COMPLETE') {
        if (!episode || (episode.goneAt !== undefined && upcoming.status === 'none')) return [];
        const wasShown = episode.goneAt === undefined;
        const { identity } = episode;
        if (upcoming.status === 'COMPLETE') {
          episode = undefined;
          ended += 1;
        } else episode.goneAt = now.getTime();
        if (!wasShown) return [];
        const why = upcoming.status === 'COMPLETE' ? 'completed' : 'no longer pending';
        return [{ type: 'withdrawn', noticeId: noticeId('gcp', 'maintenance', identity), reason: `GCE upcoming maintenance ${why}` }];
      }
      const what = [upcoming.type, [...upcoming.reasons].sort().join(',')].join('\0');
      if (episode?.goneAt !== undefined && (episode.what !== what || now.getTime() - episode.goneAt >= FLAP_MS)) {
        episode = undefined;
        ended += 1;
      }
      const identity = episode?.identity ?? [boot, 'upcoming-maintenance', what, ended].join('\0');
      // Only news is sent on: a first sight, a return, a moved window, a new status or new reasons.
      const shown = JSON.stringify([upcoming.status, upcoming.windowStart, upcoming.reasons]);
      if (episode?.goneAt === undefined && episode?.shown === shown) return [];
      episode = { identity, what: episode?.what ?? what, shown };
      const raw = { path: SOURCE, value: upcoming.raw, etag };
      return [{ type: 'notice', kind: 'maintenance', identity, deadline: upcoming.windowStart, raw, advisory: true, reasons: upcoming.reasons }];
    },
  };
}
