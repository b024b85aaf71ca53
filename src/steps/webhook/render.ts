import type Handlebars from 'handlebars';
import { errorMessage } from '../../lib/errors.js';
import { buildEvent, type PreemptdEvent } from '../../notice/event.js';
import { AGENT_VERSION } from '../../lib/host.js';
import { loadHandlebars } from '../../lib/on-demand.js';
import { renderDiscord } from './formats/discord.js';
import { renderGoogleChat } from './formats/googlechat.js';
import { renderSlack } from './formats/slack.js';
import { renderTeams } from './formats/teams.js';
import { renderTelegram } from './formats/telegram.js';

export const WEBHOOK_FORMATS = ['json', 'slack', 'teams', 'discord', 'googlechat', 'telegram', 'template'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** The options a renderer may read (a subset of the webhook step's options). */
export interface RenderOptions {
  template?: string | undefined;
  contentType: string;
  chatId?: string | number | undefined;
}

export interface RenderedBody {
  body: string;
  contentType: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The body a webhook sends: the event itself (json), a chat rendering of it, or a template. */
export function renderWebhook(format: WebhookFormat, event: PreemptdEvent, options: RenderOptions): RenderedBody {
  switch (format) {
    case 'json':
      return jsonBody(event);
    case 'slack':
      return jsonBody(renderSlack(event));
    case 'teams':
      return jsonBody(renderTeams(event));
    case 'discord':
      return jsonBody(renderDiscord(event));
    case 'googlechat':
      return jsonBody(renderGoogleChat(event));
    case 'telegram':
      return jsonBody(renderTelegram(event, options.chatId ?? ''));
    case 'template':
      return { body: renderTemplate(options.template ?? '', event), contentType: options.contentType };
  }
}

function jsonBody(value: unknown): RenderedBody {
  return { body: JSON.stringify(value), contentType: JSON_TYPE };
}

/**
 * Templates render raw text (no HTML escaping: bodies are JSON or plain text); `{{json x}}`
 * writes a value as JSON, quotes and escapes included.
 */
let engine: typeof Handlebars | undefined;
/** Built on first use: a config without templates never loads handlebars (lib/on-demand.ts). */
function templates(): typeof Handlebars {
  if (!engine) {
    const handlebars = loadHandlebars();
    engine = handlebars.create();
    engine.registerHelper('json', (value: unknown) => new handlebars.SafeString(JSON.stringify(value ?? null)));
  }
  return engine;
}

const compiled = new Map<string, Handlebars.TemplateDelegate>();

/** Renders handlebars `source` over the event's fields (also used for templated HTTP step fields). */
export function renderTemplate(source: string, event: PreemptdEvent): string {
  return compileTemplate(source)(event);
}

function compileTemplate(source: string): Handlebars.TemplateDelegate {
  let template = compiled.get(source);
  if (!template) {
    template = templates().compile(source, { noEscape: true, strict: false });
    compiled.set(source, template);
  }
  return template;
}

/** A notice event with every field present, for trial renders. */
const SAMPLE_EVENT = buildEvent(
  'notice',
  { id: 'aws-terminate-0000000000000000', provider: 'aws', kind: 'terminate', deadline: new Date(0), detectedAt: new Date(0), instance: {}, raw: null },
  { hostname: 'host', pid: 1, agentVersion: AGENT_VERSION },
  0,
);

/** Helpers a template may call; `log` is left out: it would write to stdout, the JSON log stream. */
const HELPERS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'json']);
/** Helpers that throw at render unless given exactly one argument. */
const ONE_ARGUMENT = new Set(['if', 'unless', 'each', 'with']);

interface TemplateNode {
  type: string;
  body?: TemplateNode[];
  path?: { type: string; original?: unknown };
  params?: TemplateNode[];
  hash?: { pairs: Array<{ value: TemplateNode }> };
  program?: TemplateNode;
  inverse?: TemplateNode;
}

/**
 * What would fail only when rendered, in any branch: partials, decorators, unknown helpers,
 * and block helpers without their one argument. A trial render cannot see these inside an
 * `{{#each}}` over an empty list or an `{{else}}`.
 */
function renderProblem(node: TemplateNode | undefined): string | undefined {
  if (!node) return undefined;
  if (node.type.startsWith('Partial')) return 'partials ({{> name}}) are not supported';
  if (node.type.startsWith('Decorator')) return 'decorators ({{* name}}) are not supported';
  const name = node.path?.type === 'PathExpression' ? String(node.path.original) : undefined;
  const params = node.params ?? [];
  const called = node.type === 'SubExpression' || params.length > 0 || node.hash !== undefined || (name !== undefined && ONE_ARGUMENT.has(name));
  if (name !== undefined && called && !HELPERS.has(name)) return `unknown helper "${name}" (expected one of ${[...HELPERS].join(', ')})`;
  if (name !== undefined && ONE_ARGUMENT.has(name) && params.length !== 1) return `{{#${name}}} needs exactly one argument, got ${params.length}`;
  const children = [...(node.body ?? []), ...params, ...(node.hash?.pairs.map((pair) => pair.value) ?? []), node.program, node.inverse];
  for (const child of children) {
    const problem = renderProblem(child);
    if (problem) return problem;
  }
  return undefined;
}

/** Undefined when the template parses and renders; otherwise the complaint. */
export function validateTemplate(source: string): string | undefined {
  let program: TemplateNode;
  try {
    program = templates().parse(source) as unknown as TemplateNode;
  } catch (error) {
    return describeParseError(errorMessage(error));
  }
  const problem = renderProblem(program);
  if (problem) return problem;
  try {
    renderTemplate(source, SAMPLE_EVENT);
    return undefined;
  } catch (error) {
    return errorMessage(error).replace(/\s*\n\s*/g, ' ');
  }
}

/**
 * Handlebars reports `Parse error on line N:`, the line, a `---^` pointer and a long list
 * of expected tokens; this keeps the line number, the text before the pointer and what
 * was found, on one line.
 */
function describeParseError(message: string): string {
  const [where = message, excerpt = '', pointer = '', expecting = ''] = message.split('\n');
  const found = /got '([^']+)'$/.exec(expecting)?.[1];
  if (found === undefined) return message.replace(/\s*\n\s*/g, ' ');
  const column = pointer.length - 1;
  // The pointer marks where the bad token starts; show a little of what led up to it and the token.
  const near = excerpt.slice(Math.max(0, column - 24), column + 3);
  const what = found === 'EOF' ? 'the template ends too early (an unclosed {{#block}}?)' : `unexpected ${found}`;
  return `${where.replace(/:$/, '')} near \`${near}\`: ${what}`;
}
