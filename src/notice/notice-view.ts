import { isAdvisory, type Notice } from './notice.js';

/**
 * The notice as applications read it: the notice file, GET /v1/notice and `preemptd wait`
 * print this one shape (docs/operations.md "Applications can ask").
 */
export interface NoticeView {
  id: string;
  provider: Notice['provider'];
  kind: Notice['kind'];
  /** ISO time the cloud takes the machine; null for an advisory notice without one. */
  deadline: string | null;
  /** Whole seconds from `now` to the deadline (0 once past); null without a deadline. */
  secondsLeft: number | null;
  detectedAt: string;
  /** True when the VM outlives the event (rebalance, freeze, a live migration). */
  advisory: boolean;
}

export function noticeView(notice: Notice, now: number): NoticeView {
  return {
    id: notice.id,
    provider: notice.provider,
    kind: notice.kind,
    deadline: notice.deadline?.toISOString() ?? null,
    secondsLeft: notice.deadline === null ? null : Math.max(0, Math.floor((notice.deadline.getTime() - now) / 1000)),
    detectedAt: notice.detectedAt.toISOString(),
    advisory: isAdvisory(notice),
  };
}
