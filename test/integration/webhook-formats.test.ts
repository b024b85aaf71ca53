import type { PreemptdEvent } from '../../src/notice/event.js';
import type { StepContext } from '../../src/steps/types.js';
import { webhookStep } from '../../src/steps/webhook/step.js';
import { countdown } from '../../src/steps/webhook/summary.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { testStepContext } from '../helpers/step-context.js';

const noticeEvent: PreemptdEvent = {
  version: 1,
  type: 'notice',
  notice: {
    id: 'aws-terminate-0123456789abcdef',
    provider: 'aws',
    kind: 'terminate',
    deadline: '2030-01-01T00:02:00.000Z',
    detectedAt: '2030-01-01T00:00:00.000Z',
    instance: { id: 'i-0abc123', type: 'g5.xlarge', zone: 'eu-west-1a' },
    raw: { action: 'terminate', time: '2030-01-01T00:02:00Z' },
  },
  host: { hostname: 'gpu-7', pid: 4242, agentVersion: '0.1.0' },
  planDeadline: '2030-01-01T00:01:55.000Z',
  steps: [],
  sentAt: '2030-01-01T00:00:05.000Z',
};

const finishedEvent: PreemptdEvent = {
  ...noticeEvent,
  type: 'plan.finished',
  steps: [
    { name: 'drain-api', type: 'http', status: 'ok', ms: 1200 },
    { name: 'save-state', type: 'snapshot', status: 'failed', ms: 3000, error: 'upload to <bucket> failed: 403' },
  ],
  sentAt: '2030-01-01T00:00:20.000Z',
};

let hook: Receiver;
let dispose: () => void;

beforeEach(async () => {
  hook = await startReceiver();
});
afterEach(async () => {
  dispose?.();
  await hook.close();
});

/** Sends `event` through the real step to the receiver and returns what arrived. */
async function send(raw: Record<string, unknown>, event: PreemptdEvent = noticeEvent) {
  const made = testStepContext();
  dispose = made.dispose;
  const context: StepContext = { ...made.context, phase: event.type === 'notice' ? 'notice' : 'finish', event: () => event };
  await webhookStep.run(webhookStep.schema.parse({ url: hook.url('/hook'), ...raw }), context);
  const [request] = await hook.waitFor(1);
  return { request: request!, body: request!.headers['content-type']?.startsWith('application/json') ? JSON.parse(request!.body) : undefined };
}

const noticeFacts: Array<[string, string]> = [
  ['Instance', 'i-0abc123'],
  ['Kind', 'terminate'],
  ['Provider', 'aws'],
  ['Deadline', 'in 1m 55s (2030-01-01T00:02:00.000Z)'],
  ['Host', 'gpu-7'],
  ['Type', 'g5.xlarge'],
  ['Zone', 'eu-west-1a'],
];

test('countdown reads like a person would say it', () => {
  expect(countdown(115_000)).toBe('in 1m 55s');
  expect(countdown(30_000)).toBe('in 30s');
  expect(countdown(120_000)).toBe('in 2m 0s');
  expect(countdown(200)).toBe('now');
  expect(countdown(-12_000)).toBe('passed 12s ago');
});

test('json sends the event itself', async () => {
  const { body } = await send({ format: 'json' });
  expect(body).toEqual(noticeEvent);
});

test('slack: text fallback plus header, facts, context blocks', async () => {
  const { body } = await send({ format: 'slack' });
  expect(body).toEqual({
    text: 'Interruption notice: terminate on i-0abc123',
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Interruption notice: terminate on i-0abc123' } },
      { type: 'section', fields: noticeFacts.map(([label, value]) => ({ type: 'mrkdwn', text: `*${label}*\n${value}` })) },
      { type: 'context', elements: [{ type: 'mrkdwn', text: 'preemptd 0.1.0 · 2030-01-01T00:00:05.000Z' }] },
    ],
  });
});

test('slack: the reasons a cloud gives (a GPU failure behind a GCP maintenance) are in the text and the facts', async () => {
  const gpuFailure: PreemptdEvent = {
    ...noticeEvent,
    notice: { ...noticeEvent.notice, provider: 'gcp', kind: 'maintenance', advisory: true, reasons: ['FAILURE_GPU_XID'] },
  };
  const { body } = await send({ format: 'slack' }, gpuFailure);
  expect(body.text).toBe('Interruption notice: maintenance (FAILURE_GPU_XID) on i-0abc123');
  expect(body.blocks[1].fields).toContainEqual({ type: 'mrkdwn', text: '*Reasons*\nFAILURE_GPU_XID' });
});

test('slack on finish lists every step with its outcome, escaped for mrkdwn', async () => {
  const { body } = await send({ format: 'slack', send: 'finish' }, finishedEvent);
  expect(body.text).toBe('Plan finished on i-0abc123: 1/2 steps ok');
  expect(body.blocks[1].fields[3]).toEqual({ type: 'mrkdwn', text: '*Deadline*\nin 1m 40s (2030-01-01T00:02:00.000Z)' });
  expect(body.blocks[2]).toEqual({
    type: 'section',
    text: {
      type: 'mrkdwn',
      text: ':white_check_mark: *drain-api* ok in 1.2s\n:x: *save-state* failed after 3.0s: upload to &lt;bucket&gt; failed: 403',
    },
  });
});

test('teams: a Workflows message carrying an Adaptive Card 1.4', async () => {
  const { body } = await send({ format: 'teams' }, finishedEvent);
  expect(body).toEqual({
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            { type: 'TextBlock', text: 'Plan finished on i-0abc123: 1/2 steps ok', weight: 'Bolder', size: 'Medium', wrap: true, color: 'Attention' },
            {
              type: 'FactSet',
              facts: noticeFacts.map(([title, value]) => ({
                title,
                value: title === 'Deadline' ? 'in 1m 40s (2030-01-01T00:02:00.000Z)' : value,
              })),
            },
            { type: 'TextBlock', text: 'Steps', weight: 'Bolder', wrap: true, spacing: 'Medium' },
            {
              type: 'FactSet',
              facts: [
                { title: 'drain-api', value: 'ok in 1.2s' },
                { title: 'save-state', value: 'failed after 3.0s: upload to <bucket> failed: 403' },
              ],
            },
          ],
        },
      },
    ],
  });
});

test('discord: content plus one embed, mentions off', async () => {
  const { body } = await send({ format: 'discord' });
  expect(body).toEqual({
    content: 'Interruption notice: terminate on i-0abc123',
    embeds: [
      {
        title: 'Interruption notice: terminate on i-0abc123',
        color: 0xecb22e,
        fields: noticeFacts.map(([name, value]) => ({ name, value, inline: true })),
        timestamp: '2030-01-01T00:00:05.000Z',
        footer: { text: 'preemptd 0.1.0' },
      },
    ],
    allowed_mentions: { parse: [] },
  });
});

test('googlechat: text plus a cardsV2 card', async () => {
  const { body } = await send({ format: 'googlechat' }, finishedEvent);
  expect(body.text).toBe('Plan finished on i-0abc123: 1/2 steps ok');
  expect(body.cardsV2).toHaveLength(1);
  expect(body.cardsV2[0].cardId).toBe('preemptd-plan.finished');
  expect(body.cardsV2[0].card.header).toEqual({ title: 'Plan finished on i-0abc123: 1/2 steps ok', subtitle: 'preemptd 0.1.0' });
  expect(body.cardsV2[0].card.sections[0].widgets[0]).toEqual({ decoratedText: { topLabel: 'Instance', text: 'i-0abc123' } });
  expect(body.cardsV2[0].card.sections[1]).toEqual({
    header: 'Steps',
    widgets: [
      { decoratedText: { topLabel: 'drain-api', text: 'ok in 1.2s', wrapText: true } },
      { decoratedText: { topLabel: 'save-state', text: 'failed after 3.0s: upload to <bucket> failed: 403', wrapText: true } },
    ],
  });
});

test('telegram: a sendMessage body with HTML text to the configured chat', async () => {
  const { body, request } = await send({ format: 'telegram', botToken: '123456:TEST-token', chatId: -100123 }, finishedEvent);
  expect(request.path).toBe('/hook');
  expect(body).toEqual({
    chat_id: -100123,
    parse_mode: 'HTML',
    text: [
      '<b>Plan finished on i-0abc123: 1/2 steps ok</b>',
      'Instance: i-0abc123',
      'Kind: terminate',
      'Provider: aws',
      'Deadline: in 1m 40s (2030-01-01T00:02:00.000Z)',
      'Host: gpu-7',
      'Type: g5.xlarge',
      'Zone: eu-west-1a',
      '',
      '<b>Steps</b>',
      'drain-api: ok in 1.2s',
      'save-state: failed after 3.0s: upload to &lt;bucket&gt; failed: 403',
    ].join('\n'),
  });
});

test('telegram without url posts to the Bot API sendMessage method', () => {
  const options = webhookStep.schema.parse({ format: 'telegram', botToken: '123456:TEST-token', chatId: '@ops' });
  expect(webhookStep.describe(options)).toBe('POST telegram at notice to api.telegram.org (5 retries)');
});

test('template: handlebars over the event, raw text, with a json helper and the chosen content type', async () => {
  const template = '{"summary": {{json notice.kind}}, "id": "{{notice.id}}", "steps": {{steps.length}}, "first": "{{steps.0.name}}", "host": {{json host}} }';
  const { request } = await send({ format: 'template', template, contentType: 'application/vnd.ops+json', secret: 's3cr3t-value' }, finishedEvent);
  expect(request.headers['content-type']).toBe('application/vnd.ops+json');
  expect(request.body).toBe(
    '{"summary": "terminate", "id": "aws-terminate-0123456789abcdef", "steps": 2, "first": "drain-api", "host": {"hostname":"gpu-7","pid":4242,"agentVersion":"0.1.0"} }',
  );
  expect(request.headers['x-preemptd-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
});
