import type { Daemon } from '../daemon/daemon.js';
import { DaemonSubscription } from '../daemon/subscription.js';
import type { Notice, NoticeKind } from '../notice/notice.js';

/**
 * The notices the daemon is handling now, as applications see them: raised when its plan
 * starts, re-timed when the cloud moves its deadline, gone when it is withdrawn or its plan
 * ends. The notice file and GET /v1/notice both read it.
 */
export class NoticeBoard {
  private readonly active = new Map<string, Notice>();
  private readonly listeners = new Set<() => void>();
  private readonly subscription: DaemonSubscription;

  constructor(daemon: Daemon) {
    this.subscription = new DaemonSubscription(daemon)
      .on('notice', (notice) => this.set(notice))
      .on('noticeMoved', (notice) => {
        if (this.active.has(notice.id)) this.set(notice);
      })
      .on('withdrawn', (noticeId) => this.remove(noticeId))
      .on('planFinished', (notice) => this.remove(notice.id));
  }

  /**
   * The most pressing notice (of `kinds`, when given): the earliest deadline first, then
   * the one raised last among notices without a deadline. Undefined when there is none.
   */
  current(kinds?: readonly NoticeKind[]): Notice | undefined {
    let best: Notice | undefined;
    for (const notice of this.active.values()) {
      if (kinds && !kinds.includes(notice.kind)) continue;
      if (!best || morePressing(notice, best)) best = notice;
    }
    return best;
  }

  /** Calls `listener` after every change; returns the function that stops it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The current notice of `kinds`, or the first one raised within `waitMs`; undefined when
   * the time runs out or `signal` aborts first.
   */
  next(kinds: readonly NoticeKind[] | undefined, waitMs: number, signal: AbortSignal): Promise<Notice | undefined> {
    const now = this.current(kinds);
    if (now || waitMs <= 0 || signal.aborted) return Promise.resolve(now);
    return new Promise((resolve) => {
      const finish = (notice: Notice | undefined) => {
        clearTimeout(timer);
        stop();
        signal.removeEventListener('abort', onAbort);
        resolve(notice);
      };
      const onAbort = () => finish(undefined);
      const timer = setTimeout(onAbort, waitMs);
      const stop = this.onChange(() => {
        const notice = this.current(kinds);
        if (notice) finish(notice);
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.subscription.close();
    this.listeners.clear();
  }

  private set(notice: Notice): void {
    this.active.set(notice.id, notice);
    this.changed();
  }

  private remove(noticeId: string): void {
    if (this.active.delete(noticeId)) this.changed();
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

function morePressing(a: Notice, b: Notice): boolean {
  if (a.deadline && b.deadline) return a.deadline.getTime() < b.deadline.getTime();
  if (a.deadline || b.deadline) return a.deadline !== null;
  return a.detectedAt.getTime() >= b.detectedAt.getTime();
}
