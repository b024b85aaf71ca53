import type { PreemptdEvent, StepSummary } from '../../notice/event.js';

/** The facts every chat rendering shows, worked out once from the event. */
export interface EventSummary {
  /** One line: what happened, to which machine. */
  title: string;
  /** Label / value pairs in display order. */
  facts: Array<[label: string, value: string]>;
  /** On `plan.finished`: one entry per step; empty for a notice. */
  steps: StepLine[];
  /** Whether every step of a finished plan ended ok (true for a notice). */
  ok: boolean;
}

export interface StepLine {
  name: string;
  status: StepSummary['status'];
  /** `ok in 1.2s`, `failed after 3.0s: HTTP 500`... */
  text: string;
}

const STATUS_WORDS: Record<StepSummary['status'], string> = {
  ok: 'ok in',
  failed: 'failed after',
  timed_out: 'timed out after',
  skipped: 'skipped after',
};

export function summarizeEvent(event: PreemptdEvent): EventSummary {
  const notice = event.notice as {
    kind: string;
    provider: string;
    deadline: string | null;
    instance: { id?: string; name?: string; type?: string; zone?: string };
    reasons?: string[];
  };
  const instance = notice.instance.name ?? notice.instance.id ?? event.host.hostname;
  const sentAt = Date.parse(event.sentAt);
  const facts: Array<[string, string]> = [
    ['Instance', instance],
    ['Kind', notice.kind],
    ['Provider', notice.provider],
    ['Deadline', notice.deadline === null ? 'none (advisory)' : `${countdown(Date.parse(notice.deadline) - sentAt)} (${notice.deadline})`],
    ['Host', event.host.hostname],
  ];
  // A GPU failure behind a maintenance is news an operator wants to read in chat.
  if (notice.reasons?.length) facts.push(['Reasons', notice.reasons.join(', ')]);
  if (notice.instance.type) facts.push(['Type', notice.instance.type]);
  if (notice.instance.zone) facts.push(['Zone', notice.instance.zone]);

  if (event.type === 'notice') {
    const why = notice.reasons?.length ? ` (${notice.reasons.join(', ')})` : '';
    return { title: `Interruption notice: ${notice.kind}${why} on ${instance}`, facts, steps: [], ok: true };
  }
  const steps = event.steps.map((step) => ({
    name: step.name,
    status: step.status,
    text: `${STATUS_WORDS[step.status]} ${seconds(step.ms)}${step.error ? `: ${step.error}` : ''}${podsText(step.detail?.pods)}`,
  }));
  const good = event.steps.filter((step) => step.status === 'ok').length;
  return {
    title: `Plan finished on ${instance}: ${good}/${event.steps.length} steps ok`,
    facts,
    steps,
    ok: good === event.steps.length,
  };
}

/** `in 1m 55s`, `in 30s`, `now`, `passed 12s ago` (whole seconds: chat is read by people). */
export function countdown(ms: number): string {
  const total = Math.round(Math.abs(ms) / 1000);
  if (total === 0) return 'now';
  const minutes = Math.floor(total / 60);
  const text = minutes > 0 ? `${minutes}m ${total % 60}s` : `${total}s`;
  return ms > 0 ? `in ${text}` : `passed ${text} ago`;
}

/** Pods listed in a step's detail (a kubernetes drain's `pods`, each with how it ended), for people to read. */
const PODS_SHOWN = 20;
function podsText(pods: unknown): string {
  if (!Array.isArray(pods) || pods.length === 0) return '';
  const lines = (pods as Array<{ pod?: unknown; outcome?: unknown; reason?: unknown }>).slice(0, PODS_SHOWN).map((pod) => `${String(pod.pod)} ${String(pod.outcome)}${pod.reason ? ` (${String(pod.reason)})` : ''}`);
  const more = pods.length > PODS_SHOWN ? `; and ${pods.length - PODS_SHOWN} more` : '';
  return `; pods: ${lines.join('; ')}${more}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
