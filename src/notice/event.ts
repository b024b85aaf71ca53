import type { HostFacts } from '../lib/host.js';
import { noticeToJSON, type Notice } from './notice.js';

export const EVENT_VERSION = 1;

export type StepStatus = 'ok' | 'failed' | 'timed_out' | 'skipped';

/** One step's outcome as the summary event reports it. */
export interface StepSummary {
  name: string;
  type: string;
  status: StepStatus;
  ms: number;
  error?: string;
  /** Step-specific facts (pids signalled, HTTP status, bytes uploaded...). */
  detail?: Record<string, unknown>;
}

/**
 * The one versioned shape shared by webhooks, logs and `simulate`. Chat formats are
 * renderings of it. Adding a field is compatible; renaming one bumps `version`.
 */
export interface PreemptdEvent {
  version: typeof EVENT_VERSION;
  type: 'notice' | 'plan.finished';
  notice: Record<string, unknown>;
  host: HostFacts;
  /** Plan deadline (notice deadline minus safety margin), ISO, or null when none. */
  planDeadline: string | null;
  steps: StepSummary[];
  sentAt: string;
}

export function buildEvent(
  type: PreemptdEvent['type'],
  notice: Notice,
  host: HostFacts,
  planDeadline: number | null,
  steps: StepSummary[] = [],
): PreemptdEvent {
  return {
    version: EVENT_VERSION,
    type,
    notice: noticeToJSON(notice),
    host,
    planDeadline: planDeadline === null ? null : new Date(planDeadline).toISOString(),
    steps,
    sentAt: new Date().toISOString(),
  };
}
