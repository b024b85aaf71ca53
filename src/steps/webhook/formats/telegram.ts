import type { PreemptdEvent } from '../../../notice/event.js';
import { summarizeEvent } from '../summary.js';

/** Telegram HTML parse mode needs only these escaped. */
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Bot API sendMessage body. */
export function renderTelegram(event: PreemptdEvent, chatId: string | number): Record<string, unknown> {
  const summary = summarizeEvent(event);
  const lines = [
    `<b>${escape(summary.title)}</b>`,
    ...summary.facts.map(([label, value]) => `${escape(label)}: ${escape(value)}`),
    ...(summary.steps.length > 0 ? ['', '<b>Steps</b>', ...summary.steps.map((step) => `${escape(step.name)}: ${escape(step.text)}`)] : []),
  ];
  // sendMessage takes at most 4096 characters.
  return { chat_id: chatId, text: lines.join('\n').slice(0, 4096), parse_mode: 'HTML' };
}
