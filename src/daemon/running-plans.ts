import type { Notice } from '../notice/notice.js';
import type { Plan } from '../plan/executor.js';

/** One plan in progress: its notice as last seen, and its plan once built. */
export interface RunningPlan {
  notice: Notice;
  plan: Plan | undefined;
  done: Promise<void>;
}

/** Notices of one source and kind name one thing on this machine (a spot action, a migration). */
function sourceKey(notice: Notice): string {
  return `${notice.provider}\0${notice.kind}`;
}

/**
 * The plans in progress, by notice id, and the rule that at most one runs per source and
 * kind: a notice that arrives while a plan of its kind runs waits for that plan (the latest
 * such notice wins), so an event that a metadata service shows under ever new ids
 * never runs plans side by side.
 */
export class RunningPlans {
  private readonly byId = new Map<string, RunningPlan>();
  private readonly waiting = new Map<string, Notice>();

  get(noticeId: string): RunningPlan | undefined {
    return this.byId.get(noticeId);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  all(): Promise<void>[] {
    return [...this.byId.values()].map((entry) => entry.done);
  }

  /** The running plan of the notice's kind, if any. */
  ofKind(notice: Notice): RunningPlan | undefined {
    const key = sourceKey(notice);
    return [...this.byId.values()].find((entry) => sourceKey(entry.notice) === key);
  }

  add(notice: Notice, start: (entry: RunningPlan) => Promise<void>): void {
    const entry: RunningPlan = { notice, plan: undefined, done: Promise.resolve() };
    this.byId.set(notice.id, entry);
    entry.done = start(entry);
  }

  wait(notice: Notice): void {
    this.waiting.set(sourceKey(notice), notice);
  }

  /** Forgets an ended plan; returns the notice that waited for it, if any. */
  end(noticeId: string): Notice | undefined {
    const entry = this.byId.get(noticeId);
    this.byId.delete(noticeId);
    if (!entry) return undefined;
    const key = sourceKey(entry.notice);
    const next = this.waiting.get(key);
    this.waiting.delete(key);
    return next;
  }
}
