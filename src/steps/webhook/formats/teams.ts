import type { PreemptdEvent } from '../../../notice/event.js';
import { summarizeEvent } from '../summary.js';

/** Teams Workflows ("Post to a channel when a webhook request is received"): an Adaptive Card 1.4 in a message. */
export function renderTeams(event: PreemptdEvent): Record<string, unknown> {
  const summary = summarizeEvent(event);
  const body: Record<string, unknown>[] = [
    {
      type: 'TextBlock',
      text: summary.title,
      weight: 'Bolder',
      size: 'Medium',
      wrap: true,
      color: summary.ok && event.type === 'plan.finished' ? 'Good' : 'Attention',
    },
    { type: 'FactSet', facts: summary.facts.map(([title, value]) => ({ title, value })) },
  ];
  if (summary.steps.length > 0) {
    body.push({ type: 'TextBlock', text: 'Steps', weight: 'Bolder', wrap: true, spacing: 'Medium' });
    body.push({ type: 'FactSet', facts: summary.steps.map((step) => ({ title: step.name, value: step.text })) });
  }
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: { $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', type: 'AdaptiveCard', version: '1.4', body },
      },
    ],
  };
}
