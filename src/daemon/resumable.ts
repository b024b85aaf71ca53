import type { Notice } from '../notice/notice.js';

/** Advisory notices (no deadline) stay worth resuming this long after they began. */
const ADVISORY_RESUME_WINDOW_MS = 10 * 60_000;

/** A plan cut short by a restart is resumed only while its notice deadline still lies ahead. */
export function resumable(notice: Notice, begunAt: number, now: number): boolean {
  return notice.deadline === null ? now - begunAt < ADVISORY_RESUME_WINDOW_MS : now < notice.deadline.getTime();
}
