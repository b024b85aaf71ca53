import { snapshotTime, type SnapshotRecord } from './catalog.js';

/** Which snapshots a prune keeps (docs/snapshot.md, "Retention"). */
export interface RetentionPolicy {
  /** Keep the newest N snapshots. */
  keepLast?: number | undefined;
  /** Keep every snapshot taken within this long. */
  keepWithinMs?: number | undefined;
  /**
   * Never delete a manifest or chunk written within this long, nor the manifest latest.json
   * named this long ago: a writer may still rely on them.
   */
  graceMs: number;
}

/** Prune's grace when none is given: well above the longest commit plus the writers' reuse window. */
export const DEFAULT_GRACE_MS = 24 * 60 * 60_000;

export type KeepReason = 'latest' | 'last' | 'within' | 'grace' | 'latest-at-grace';

export interface RetentionPlan {
  keep: { record: SnapshotRecord; reasons: KeepReason[] }[];
  drop: SnapshotRecord[];
}

/**
 * Splits snapshots (newest first) into kept and dropped. Besides the policy, it always keeps
 * the pointer's manifest, every manifest written within the grace, and the newest complete
 * manifest written before the grace began: latest.json moves only to a newly committed
 * complete manifest, so that one is what it named at the grace's start, and a writer that
 * started since may have taken its chunks as stored.
 */
export function planRetention(snapshots: readonly SnapshotRecord[], latest: string | undefined, policy: RetentionPolicy, now: number): RetentionPlan {
  const graceStart = now - policy.graceMs;
  const latestAtGrace = snapshots
    .filter((record) => record.manifest.complete && record.modified <= graceStart)
    .reduce<SnapshotRecord | undefined>((newest, record) => (newest && newest.modified >= record.modified ? newest : record), undefined);
  const keep: RetentionPlan['keep'] = [];
  const drop: SnapshotRecord[] = [];
  snapshots.forEach((record, index) => {
    const reasons: KeepReason[] = [];
    if (record.name === latest) reasons.push('latest');
    if (policy.keepLast !== undefined && index < policy.keepLast) reasons.push('last');
    if (policy.keepWithinMs !== undefined && snapshotTime(record) > now - policy.keepWithinMs) reasons.push('within');
    if (record.modified > graceStart) reasons.push('grace');
    if (record === latestAtGrace) reasons.push('latest-at-grace');
    if (reasons.length) keep.push({ record, reasons });
    else drop.push(record);
  });
  return { keep, drop };
}
