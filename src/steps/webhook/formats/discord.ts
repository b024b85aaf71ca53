import type { PreemptdEvent } from '../../../notice/event.js';
import { summarizeEvent } from '../summary.js';

const RED = 0xd83c3e;
const GREEN = 0x2eb67d;
const AMBER = 0xecb22e;

/** Discord webhook: `content` plus one embed; mentions are switched off so no one is pinged by a name. */
export function renderDiscord(event: PreemptdEvent): Record<string, unknown> {
  const summary = summarizeEvent(event);
  const fields = [
    ...summary.facts.map(([name, value]) => ({ name, value, inline: true })),
    ...summary.steps.map((step) => ({ name: step.name, value: step.text.slice(0, 1024), inline: false })),
  ].slice(0, 25);
  const color = event.type === 'notice' ? AMBER : summary.ok ? GREEN : RED;
  return {
    content: summary.title.slice(0, 2000),
    embeds: [{ title: summary.title.slice(0, 256), color, fields, timestamp: event.sentAt, footer: { text: `preemptd ${event.host.agentVersion}` } }],
    allowed_mentions: { parse: [] },
  };
}
