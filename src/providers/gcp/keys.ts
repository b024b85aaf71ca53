import { MetadataError } from '../../lib/errors.js';
import { showValue } from '../../lib/format.js';
import { noticeId, type NoticeKind } from '../../notice/notice.js';

/** Spot / preemptible VMs are powered off 30 s after the soft-off that ends their notice. */
const PREEMPT_BUDGET_MS = 30_000;
/** `maintenance-event` changes about 60 s before the host maintenance starts. */
const MAINTENANCE_BUDGET_MS = 60_000;

/** One answer of the metadata server for a watched key. */
export interface GcpValue {
  status: number;
  value: string;
  etag: string | undefined;
}

/** What a watched key's new value means, before instance facts are attached. */
export type Finding =
  | { type: 'notice'; kind: NoticeKind; identity: string; deadline: Date; raw: unknown; advisory?: boolean; reasons?: string[] }
  | { type: 'withdrawn'; noticeId: string; reason: string };

export interface WatchedKey {
  path: string;
  /** Query parameters every read of the key carries (`alt=json`). */
  query?: string;
  /** A non-200 answer the key reads as a value of its own; any other is a failed read. */
  accepts?(status: number, body: string): boolean;
  /** Throws MetadataError on a value it does not understand. */
  interpret(answer: GcpValue, now: Date): Finding[];
}

/** `instance/preempted`: TRUE or FALSE; throws ERR_METADATA_BODY on anything else. */
export function parsePreempted(value: string): boolean {
  if (value === 'TRUE' || value === 'FALSE') return value === 'TRUE';
  throw new MetadataError('ERR_METADATA_BODY', `instance/preempted: expected TRUE or FALSE, got ${showValue(value)}`, 200);
}

/**
 * NONE or an `..._ON_HOST_MAINTENANCE` value (MIGRATE, TERMINATE, SHUTDOWN on old docs).
 * A value merely in capitals is not enough: a body cut short (`NO`, `MIGRATE_ON_HOS`) must
 * not become a maintenance notice.
 */
const MAINTENANCE_VALUE = /^(?:NONE|[A-Z][A-Z_]*_ON_HOST_MAINTENANCE)$/;

/** `instance/maintenance-event`: the value; throws ERR_METADATA_BODY on anything else. */
export function parseMaintenanceEvent(value: string): string {
  if (MAINTENANCE_VALUE.test(value)) return value;
  throw new MetadataError('ERR_METADATA_BODY', `instance/maintenance-event: expected NONE or a value such as MIGRATE_ON_HOST_MAINTENANCE, got ${showValue(value)}`, 200);
}

/**
 * A VM is preempted once per boot: the boot and the key are the whole identity. The
 * deadline is the Spot preemption notice duration (metadata-only notice before the
 * soft-off; 0 unless the VM was created with one) plus the 30 s after the soft-off.
 */
export function preemptedKey(boot: string, noticeDurationMs: number): WatchedKey {
  let shown = false;
  return {
    path: 'instance/preempted',
    interpret({ value, etag }, now) {
      if (!parsePreempted(value) || shown) return [];
      shown = true;
      return [
        {
          type: 'notice',
          kind: 'preempt',
          identity: `${boot}\0preempted`,
          deadline: new Date(now.getTime() + noticeDurationMs + PREEMPT_BUDGET_MS),
          raw: { path: 'instance/preempted', value, etag },
        },
      ];
    },
  };
}

/** Only a live migration leaves the VM running, so only it can come again within one boot. */
const RECURRING_MAINTENANCE = 'MIGRATE_ON_HOST_MAINTENANCE';

/**
 * `instance/maintenance-event`. GCE gives no event id, so an event is an episode: a value
 * shown again within MAINTENANCE_BUDGET_MS of going back to NONE is the same event (a flap),
 * with the same id and deadline, never a new plan. A value that ends the boot (terminate)
 * is identified by the boot and the value; a live migration, which may come again in the
 * same boot, also by when this process first saw its episode.
 */
export function maintenanceKey(boot: string): WatchedKey {
  let episode: { value: string; identity: string; deadline: Date; endedAt: number | undefined } | undefined;
  return {
    path: 'instance/maintenance-event',
    interpret({ value, etag }, now) {
      const raw = { path: 'instance/maintenance-event', value, etag };
      if (parseMaintenanceEvent(value) === 'NONE') {
        if (!episode || episode.endedAt !== undefined) return [];
        episode.endedAt = now.getTime();
        return [{ type: 'withdrawn', noticeId: noticeId('gcp', 'maintenance', episode.identity), reason: `GCE maintenance-event went from ${episode.value} back to NONE` }];
      }
      const flap = episode?.value === value && (episode.endedAt === undefined || now.getTime() - episode.endedAt < MAINTENANCE_BUDGET_MS);
      if (episode && flap) {
        if (episode.endedAt === undefined) return [];
        episode.endedAt = undefined;
      } else {
        const identity = value === RECURRING_MAINTENANCE ? `${boot}\0${value}\0${now.toISOString()}` : `${boot}\0${value}`;
        episode = { value, identity, deadline: new Date(now.getTime() + MAINTENANCE_BUDGET_MS), endedAt: undefined };
      }
      // A live migration moves the running VM: nothing on it ends.
      const advisory = value === RECURRING_MAINTENANCE;
      return [{ type: 'notice', kind: 'maintenance', identity: episode.identity, deadline: episode.deadline, raw, advisory }];
    },
  };
}
