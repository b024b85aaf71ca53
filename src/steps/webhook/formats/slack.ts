import type { PreemptdEvent } from '../../../notice/event.js';
import { summarizeEvent } from '../summary.js';

/** Slack mrkdwn needs only these three escaped. */
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Slack incoming webhook: `text` is the notification fallback, `blocks` the message. */
export function renderSlack(event: PreemptdEvent): Record<string, unknown> {
  const summary = summarizeEvent(event);
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: summary.title.slice(0, 150) } },
    {
      type: 'section',
      // Slack allows at most 10 fields in a section.
      fields: summary.facts.slice(0, 10).map(([label, value]) => ({ type: 'mrkdwn', text: `*${label}*\n${escape(value)}` })),
    },
  ];
  if (summary.steps.length > 0) {
    const lines = summary.steps.map((step) => `${step.status === 'ok' ? ':white_check_mark:' : ':x:'} *${escape(step.name)}* ${escape(step.text)}`);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n').slice(0, 3000) } });
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `preemptd ${escape(event.host.agentVersion)} · ${event.sentAt}` }] });
  return { text: escape(summary.title), blocks };
}
