import { z } from 'zod';
import { httpUrl, positiveDuration } from '../../config/fields.js';
import { registerSecret } from '../../lib/log.js';
import { renderWebhook, validateTemplate, WEBHOOK_FORMATS, type WebhookFormat } from './render.js';
import { postWebhook } from './send.js';
import { signatureHeaders } from './sign.js';
import { preloadGot } from '../../lib/load-got.js';
import { hostsResolve } from '../checks.js';
import type { StepType } from '../types.js';

const TELEGRAM_API = 'https://api.telegram.org';

/** A value that is a credential: accepted, then scrubbed from every log line. */
function secretString() {
  return z
    .string()
    .min(1, 'expected a non-empty string')
    .transform((value) => {
      registerSecret(value);
      return value;
    });
}

const webhookSchema = z
  .object({
    url: httpUrl()
      .transform((value) => {
        registerSecret(value);
        return value;
      })
      .optional(),
    format: z.enum(WEBHOOK_FORMATS, { message: `expected one of ${WEBHOOK_FORMATS.join(', ')}` }).default('json'),
    send: z.enum(['notice', 'finish', 'both'], { message: 'expected notice, finish or both' }).default('notice'),
    headers: z.record(z.string(), z.string()).default({}),
    /** Time limit of one attempt; the step's timeout and the plan deadline bound all attempts. */
    timeout: positiveDuration().default(5000),
    retries: z.number().int().min(0).max(20).default(5),
    backoff: z
      .object({ base: positiveDuration().default(250), max: positiveDuration().default(5000) })
      .strict()
      .default({ base: 250, max: 5000 }),
    secret: secretString().optional(),
    template: z.string().optional(),
    contentType: z.string().default('application/json'),
    botToken: secretString().optional(),
    chatId: z.union([z.string().min(1), z.number().int()]).optional(),
    proxy: httpUrl().optional(),
  })
  .strict()
  .superRefine((options, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (options.format === 'telegram') {
      if (options.botToken === undefined) issue('botToken', 'format telegram needs botToken (the Bot API token)');
      if (options.chatId === undefined) issue('chatId', 'format telegram needs chatId (the chat to post to)');
    } else if (options.url === undefined) {
      issue('url', 'expected the webhook URL (http:// or https://)');
    }
    if (options.format === 'template') {
      if (options.template === undefined) issue('template', 'format template needs template (handlebars source for the body)');
      else {
        const problem = validateTemplate(options.template);
        if (problem) issue('template', `not a valid handlebars template: ${problem}`);
      }
    } else if (options.template !== undefined) {
      issue('template', 'template is only used with format: template');
    }
    if (options.secret !== undefined && options.format !== 'json' && options.format !== 'template') {
      issue('secret', 'secret signs json and template bodies only; chat services do not check signatures');
    }
  });

export type WebhookOptions = z.output<typeof webhookSchema>;

function targetUrl(options: WebhookOptions): string {
  return options.url ?? `${TELEGRAM_API}/bot${options.botToken}/sendMessage`;
}

/**
 * Tells people: POSTs the versioned event (or a chat rendering of it) at once on the notice,
 * after the plan (`send: finish`, with every step's outcome), or both.
 */
export const webhookStep = {
  type: 'webhook',
  schema: webhookSchema,
  destructive: false,
  // Two attempts: a notification that has not landed by then rarely helps, and a longer
  // default would hold back the finish phase (summary webhooks) in a 30 s window.
  defaultTimeoutMs: (options) => 2 * options.timeout,
  phase: (options) => options.send,
  describe: (options) =>
    `POST ${options.format} ${options.send === 'both' ? 'at notice and after the plan' : options.send === 'finish' ? 'after the plan' : 'at notice'} to ${new URL(targetUrl(options)).host} (${options.retries} retries)`,
  async run(options, context) {
    const event = context.event(context.phase === 'finish' ? 'plan.finished' : 'notice');
    const rendered = renderWebhook(options.format as WebhookFormat, event, options);
    const sign = options.secret;
    const result = await postWebhook({
      url: targetUrl(options),
      body: rendered.body,
      headers: { 'content-type': rendered.contentType, ...options.headers },
      ...(sign === undefined ? {} : { headersForAttempt: (body: string, now: number) => signatureHeaders(sign, body, now) }),
      attemptTimeoutMs: options.timeout,
      policy: { retries: options.retries, baseMs: options.backoff.base, maxMs: options.backoff.max },
      ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
      signal: context.signal,
      deadline: context.deadline,
      log: context.log,
    });
    return { format: options.format, event: event.type, attempts: result.attempts, status: result.status };
  },
  /** The webhook (and proxy) hosts resolve; nothing is posted. */
  check: (options) => hostsResolve([targetUrl(options), ...(options.proxy === undefined ? [] : [options.proxy])]),
  preload: preloadGot,
} satisfies StepType<WebhookOptions>;
