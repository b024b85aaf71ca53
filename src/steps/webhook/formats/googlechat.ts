import type { PreemptdEvent } from '../../../notice/event.js';
import { summarizeEvent } from '../summary.js';

/** Google Chat incoming webhook: `text` (notification and fallback) plus a cardsV2 card. */
export function renderGoogleChat(event: PreemptdEvent): Record<string, unknown> {
  const summary = summarizeEvent(event);
  const sections: Record<string, unknown>[] = [
    { widgets: summary.facts.map(([topLabel, text]) => ({ decoratedText: { topLabel, text } })) },
  ];
  if (summary.steps.length > 0) {
    sections.push({
      header: 'Steps',
      widgets: summary.steps.map((step) => ({ decoratedText: { topLabel: step.name, text: step.text, wrapText: true } })),
    });
  }
  return {
    text: summary.title,
    cardsV2: [
      {
        cardId: `preemptd-${event.type}`,
        card: { header: { title: summary.title, subtitle: `preemptd ${event.host.agentVersion}` }, sections },
      },
    ],
  };
}
