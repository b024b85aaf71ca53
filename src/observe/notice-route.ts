import { durationProblem, formatDuration, parseDuration } from '../lib/duration.js';
import { showValue } from '../lib/format.js';
import { NOTICE_KINDS, type NoticeKind } from '../notice/notice.js';
import { noticeView } from '../notice/notice-view.js';
import type { NoticeBoard } from './notice-board.js';

/** The longest `?wait=` a request may ask for. */
export const MAX_NOTICE_WAIT_MS = 5 * 60_000;
/**
 * Requests waiting at once. A waiting request holds its connection, and the server keeps 64
 * (capConnections): this leaves room for probes and scrapers.
 */
export const MAX_WAITING = 48;

export interface NoticeQuery {
  waitMs: number;
  /** Only these kinds count; undefined: every kind. */
  kinds: NoticeKind[] | undefined;
}

/** `?wait=30s&kind=terminate,preempt` (kind repeatable): the query, or what was wrong with it. */
export function parseNoticeQuery(params: URLSearchParams): NoticeQuery | { error: string } {
  const wait = params.get('wait');
  let waitMs = 0;
  if (wait !== null) {
    const parsed = parseDuration(wait);
    if (parsed === undefined) return { error: `wait: got ${showValue(wait)}: ${durationProblem(wait)} (at most ${formatDuration(MAX_NOTICE_WAIT_MS)})` };
    if (parsed > MAX_NOTICE_WAIT_MS) return { error: `wait: got ${wait}: expected at most ${formatDuration(MAX_NOTICE_WAIT_MS)}; ask again to wait longer` };
    waitMs = parsed;
  }
  const named = params.getAll('kind').flatMap((value) => value.split(',')).map((kind) => kind.trim());
  const unknown = named.filter((kind) => !(NOTICE_KINDS as readonly string[]).includes(kind));
  if (unknown.length > 0) return { error: `kind: got ${unknown.map((kind) => showValue(kind)).join(', ')}: expected one of ${NOTICE_KINDS.join(', ')}` };
  return { waitMs, kinds: named.length > 0 ? (named as NoticeKind[]) : undefined };
}

export type NoticeAnswer = { status: 200; body: unknown } | { status: 204 } | { status: 400 | 503; body: { error: string } };

/**
 * GET /v1/notice: 200 with the current notice, or once one is raised within `?wait=`;
 * 204 when there is none. `stopping` aborts when the server closes: a waiting request is
 * then told so (503) rather than left hanging.
 */
export class NoticeRoute {
  private waiting = 0;

  constructor(
    private readonly board: NoticeBoard,
    private readonly now: () => number = Date.now,
  ) {}

  async answer(params: URLSearchParams, gone: AbortSignal, stopping: AbortSignal): Promise<NoticeAnswer> {
    const query = parseNoticeQuery(params);
    if ('error' in query) return { status: 400, body: query };
    let notice = this.board.current(query.kinds);
    if (!notice && query.waitMs > 0) {
      if (stopping.aborted) return { status: 503, body: { error: 'the agent is stopping' } };
      if (this.waiting >= MAX_WAITING) return { status: 503, body: { error: `${MAX_WAITING} requests are waiting already: ask again without wait=, or later` } };
      this.waiting += 1;
      try {
        notice = await this.board.next(query.kinds, query.waitMs, AbortSignal.any([gone, stopping]));
      } finally {
        this.waiting -= 1;
      }
      if (!notice && stopping.aborted) return { status: 503, body: { error: 'the agent is stopping' } };
    }
    return notice ? { status: 200, body: noticeView(notice, this.now()) } : { status: 204 };
  }
}
