import type { PlanProgress } from './plan-status.js';

/** What the one-line status shown by `systemctl status` is made of. */
export interface StatusFacts {
  provider: string | null;
  /** True until the watch loop's first metadata request completes (Azure's can take 2 min). */
  awaitingFirstRead: boolean;
  /** The last metadata error while reads keep failing; null while they succeed. */
  metadataError: string | null;
  /** Plans running now, oldest first. */
  running: PlanProgress[];
  /** The last plan that finished, once no plan runs any more. */
  lastFinished: PlanProgress | null;
  stopping: boolean;
}

/**
 * The STATUS= line, e.g. `watching azure, first metadata read pending`, `watching aws, no notice` or
 * `notice terminate at 12:02:00, 3/5 steps done` (times in UTC, as servers keep them).
 */
export function describeStatus(facts: StatusFacts): string {
  const parts: string[] = [];
  const current = facts.running.at(-1);
  if (facts.stopping) parts.push('stopping');
  if (current) {
    const others = facts.running.length - 1;
    parts.push(`notice ${describeNotice(current)}, ${describeProgress(current)}${others > 0 ? ` (+${others} more)` : ''}`);
  } else if (!facts.stopping) {
    parts.push(`watching ${facts.provider ?? 'metadata'}`);
    if (facts.awaitingFirstRead) parts.push('first metadata read pending');
    else parts.push(facts.lastFinished ? `handled ${describeNotice(facts.lastFinished)}: ${describeProgress(facts.lastFinished)}` : 'no notice');
  }
  if (facts.metadataError !== null && !facts.stopping) parts.push(`metadata failing: ${facts.metadataError}`);
  return parts.join(', ');
}

function describeNotice(plan: PlanProgress): string {
  return plan.deadline ? `${plan.kind} at ${plan.deadline.toISOString().slice(11, 19)}` : plan.kind;
}

function describeProgress(plan: PlanProgress): string {
  return `${plan.done}/${plan.steps} steps done${plan.failed > 0 ? `, ${plan.failed} failed` : ''}`;
}
