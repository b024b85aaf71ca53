
/** Every kind of interruption preemptd understands, across all clouds. */
export const NOTICE_KINDS = [
  'terminate',
  'stop',
  'hibernate',
  'rebalance',
  'maintenance',
  'preempt',
  'reboot',
  'redeploy',
  'freeze',
  'shutdown',
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** Kinds that warn of an interruption but never end the VM themselves (DESIGN.md "Notice kinds"). */
export const ADVISORY_KINDS: readonly NoticeKind[] = ['rebalance', 'freeze'];

export const PROVIDER_NAMES = ['aws', 'gcp', 'azure', 'alibaba', 'tencent'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** Where notices come from: a cloud's metadata service, or the own Kubernetes Node (`provider: kubernetes`). */
export const SOURCE_NAMES = [...PROVIDER_NAMES, 'kubernetes'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

/** What the metadata service told us about this machine; every field is best effort. */
export interface InstanceFacts {
  id?: string;
  name?: string;
  type?: string;
  zone?: string;
  region?: string;
  hostname?: string;
  lifecycle?: string;
}

/**
 * One interruption notice, the same shape for every cloud. Plain immutable data:
 * providers create it, the daemon dedupes it by `id`, the plan reads it.
 */
export interface Notice {
  readonly id: string;
  readonly provider: SourceName | 'local';
  readonly kind: NoticeKind;
  /** When the cloud takes the machine; null when the notice is advisory (rebalance). */
  readonly deadline: Date | null;
  readonly detectedAt: Date;
  readonly instance: InstanceFacts;
  /** The payload exactly as the metadata service returned it. */
  readonly raw: unknown;
  /**
   * Set by the provider when a notice of a kind that may end the VM says it will not: a GCP
   * live migration, AWS `system-maintenance`. Rebalance and freeze are advisory by kind.
   */
  readonly advisory?: boolean;
  /** Why, in the cloud's words, when it gives reasons (GCP `maintenance_reasons`: FAILURE_GPU_XID...). */
  readonly reasons?: readonly string[];
}

/** True when the VM outlives the event: destructive steps then run only if their `on:` names the kind. */
export function isAdvisory(notice: Pick<Notice, 'kind' | 'advisory'>): boolean {
  return notice.advisory === true || ADVISORY_KINDS.includes(notice.kind);
}

/**
 * Stable id: the same notice polled a thousand times hashes to the same id.
 * `identity` must hold only what identifies the notice (never the detection time).
 */
export function noticeId(provider: Notice['provider'], kind: NoticeKind, identity: string): string {
  // Loaded on first use: the CLI imports this module for its constants, and `--help` need not load crypto.
  const digest = process.getBuiltinModule('node:crypto').createHash('sha256').update(`${provider}\0${kind}\0${identity}`).digest('hex');
  return `${provider}-${kind}-${digest.slice(0, 16)}`;
}

/** JSON-friendly view of a notice (dates as ISO strings) for events, logs and the journal. */
export function noticeToJSON(notice: Notice): Record<string, unknown> {
  return {
    id: notice.id,
    provider: notice.provider,
    kind: notice.kind,
    deadline: notice.deadline?.toISOString() ?? null,
    detectedAt: notice.detectedAt.toISOString(),
    instance: notice.instance,
    raw: notice.raw,
    ...(notice.advisory === true ? { advisory: true } : {}),
    ...(notice.reasons?.length ? { reasons: [...notice.reasons] } : {}),
  };
}
