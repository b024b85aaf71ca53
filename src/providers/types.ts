import type { NodeSignal } from '../config/types.js';
import type { ErrorCode } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import type { InstanceFacts, Notice, SourceName } from '../notice/notice.js';

/** The result of one metadata request, for health, metrics and logs. */
export interface MetadataRead {
  /** Which source was read (`spot/instance-action`, `instance/preempted`, `token`...). */
  source: string;
  ok: boolean;
  ms: number;
  /** HTTP status when one arrived. */
  status?: number;
  /** Short reason when not ok (timeout, connection refused, bad JSON...). */
  error?: string;
  /** The error's code when not ok, such as ERR_METADATA_TIMEOUT (docs/errors.md). */
  code?: ErrorCode;
  /** The provider that read it, when one watch merges several (src/providers/alongside.ts). */
  provider?: SourceName;
}

export type ProviderEvent =
  | { type: 'notice'; notice: Notice }
  /** A notice that was shown before is gone or cancelled (AWS canceled event, Azure event gone). */
  | { type: 'withdrawn'; noticeId: string; reason: string };

export interface WatchContext {
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Called after every metadata request, successful or not. */
  onRead(read: MetadataRead): void;
}

/** Settings every provider takes; each provider file documents what it uses. */
export interface ProviderOptions {
  /** Base URL of the metadata service (no trailing slash), e.g. http://169.254.169.254. */
  baseUrl: string;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  /** `lifecycleTimeoutMs` and `hibernateBudgetMs` are optional so existing callers keep compiling (defaults in aws/provider.ts). */
  aws: { allowImdsV1: boolean; tokenTtlSeconds: number; tokenTimeoutMs: number; lifecycleTimeoutMs?: number; hibernateBudgetMs?: number };
  /** GCP: `preemptionNoticeDurationMs` is optional so existing callers keep compiling (0 when absent). */
  gcp: { hangTimeoutSeconds: number; preemptionNoticeDurationMs?: number };
  /** Azure Scheduled Events; optional so existing callers keep compiling (defaults in azure.ts). */
  azure?: { firstCallTimeoutMs: number };
  /** Alibaba Cloud ECS; optional so existing callers keep compiling (defaults in alibaba.ts). */
  alibaba?: { hardened: boolean; tokenTtlSeconds: number };
  /** `provider: kubernetes`: the own Node as the source; the metadata settings above do not apply. */
  kubernetes?: { node: string | null; kubeconfig: string | null; signals: readonly NodeSignal[]; watchNode?: boolean };
  /** What every wait and token lifetime is measured on; REAL_CLOCK unless a test hands in its own. */
  clock?: Clock;
  /** The boot notice ids are built on (lib/boot-id.ts) unless a test hands in its own. */
  bootId?: string;
}

/**
 * One cloud's interruption source. Knows nothing of steps: it only yields notices.
 * `watch` runs until the signal aborts and never throws for metadata errors: it reports
 * them through `onRead`, backs off and tries again.
 */
export interface Provider {
  readonly name: SourceName;
  /** The notice sources its watch merges, when more than one (the cloud and the own Node); health reports each. */
  readonly sources?: readonly SourceName[];
  instanceFacts(signal: AbortSignal): Promise<InstanceFacts>;
  watch(context: WatchContext): AsyncIterable<ProviderEvent>;
  /**
   * Tells the cloud this machine is ready, so it may proceed before the notice's deadline
   * (Azure: a StartRequests POST). Optional: only clouds that accept an acknowledgement
   * have it. The daemon calls it after the plan has finished, when config asks it to;
   * it throws (PreemptdError) when the cloud refuses.
   */
  acknowledge?(notice: Notice, signal: AbortSignal): Promise<void>;
}
