import { constants } from 'node:os';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { DURATION_PATTERN, durationProblem, formatDuration, parseDuration } from '../lib/duration.js';
import { showValue } from '../lib/format.js';
import { Pattern, PATTERN_SYNTAX } from '../lib/pattern.js';
import { NOTICE_KINDS } from '../notice/notice.js';

/**
 * The longest wait a Node.js timer holds (2^31 - 1 ms, about 24.8 days); a longer one fires
 * after 1 ms, so a 1000h poll interval would poll flat out and a 1000h step timeout would
 * time the step out at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The JSON Schema of a field whose zod schema a JSON Schema cannot show (a transform that
 * parses a string): config/json-schema.ts puts it in place of zod's own rendering.
 */
export const jsonForms = z.registry<Record<string, unknown>>();

/** parseDuration's pattern, with the blanks it trims. */
const DURATION_TEXT = `\\s*${DURATION_PATTERN.source.slice(1, -1)}\\s*`;
const DURATION_HINT = 'a duration such as 500ms, 5s, 2m or 1h';

/** A duration such as `500ms`, `5s`, `2m`, `1h` (or 0), compiled to milliseconds; a bare number is refused. */
export function duration() {
  const schema = durationSchema(false);
  jsonForms.add(schema, { description: `${DURATION_HINT}, or 0`, anyOf: [{ const: 0 }, { type: 'string', pattern: `^(?:${DURATION_TEXT}|\\s*0\\s*)$` }] });
  return schema;
}

/** A duration that must be greater than zero (intervals, timeouts). */
export function positiveDuration() {
  const schema = durationSchema(true);
  // The lookahead wants a non-zero digit: 0s and 0.0ms are refused.
  jsonForms.add(schema, { description: `${DURATION_HINT}, greater than 0`, type: 'string', pattern: `^(?=[^1-9]*[1-9])${DURATION_TEXT}$` });
  return schema;
}

/** One transform for both (not a refinement of duration(), whose JSON form zod would merge in). */
function durationSchema(positive: boolean) {
  return z.union([z.string(), z.number()]).transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms !== undefined && ms > MAX_TIMER_MS) {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: longer than 596h (about 24.8 days), the longest wait preemptd can time` });
      return z.NEVER;
    }
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: ${durationProblem(value)}` });
      return z.NEVER;
    }
    if (positive && ms === 0) {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(formatDuration(ms))}: expected a duration greater than 0` });
      return z.NEVER;
    }
    return ms;
  });
}

/** An absolute http:// or https:// URL. */
export function httpUrl() {
  return z.string().superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: expected an absolute http:// or https:// URL` });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `got scheme ${showValue(url.protocol)}: expected an http:// or https:// URL` });
    }
  });
}

/** An absolute file path, such as /run/preemptd/notice.json. */
export function absolutePath() {
  return z.string().refine((value) => isAbsolute(value) && !value.endsWith('/'), {
    error: (issue) => `got ${showValue(issue.input)}: expected an absolute file path such as /run/preemptd/notice.json`,
  });
}

const SIGNAL_NAMES = Object.keys(constants.signals) as NodeJS.Signals[];

/** A signal name (`SIGTERM` or `TERM`, any case), normalised to `SIGTERM`. */
export function signalName() {
  return z.string().transform((value, ctx) => {
    const upper = value.trim().toUpperCase();
    const name = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as NodeJS.Signals;
    if (!SIGNAL_NAMES.includes(name)) {
      ctx.addIssue({
        code: 'custom',
        message: `got ${showValue(value)}: expected a signal name such as SIGTERM, SIGINT, SIGUSR1, SIGHUP or SIGKILL`,
      });
      return z.NEVER;
    }
    return name;
  });
}

export function noticeKind() {
  return z.enum(NOTICE_KINDS, { error: (issue) => `got ${showValue(issue.input)}: expected one of ${NOTICE_KINDS.join(', ')}` });
}

/** A regular expression in RE2 syntax, compiled to a linear-time matcher. */
export function regex() {
  return z.string().transform((value, ctx) => {
    try {
      return new Pattern(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: not a valid regular expression in ${PATTERN_SYNTAX} (${(error as Error).message})` });
      return z.NEVER;
    }
  });
}

const LISTEN_ADDRESS = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/;

/** A listen address `host:port` (`127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`), compiled to its parts. */
export function listenAddress() {
  const schema = z.string().transform((value, ctx) => {
    const match = LISTEN_ADDRESS.exec(value.trim());
    const port = match ? Number(match[3]) : NaN;
    if (!match || port > 65_535) {
      ctx.addIssue({
        code: 'custom',
        message: `got ${showValue(value)}: expected host:port such as 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 (all interfaces)`,
      });
      return z.NEVER;
    }
    return { host: (match[1] ?? match[2])!, port };
  });
  jsonForms.add(schema, { description: 'host:port such as 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464', type: 'string', pattern: `^\\s*${LISTEN_ADDRESS.source.slice(1, -1)}\\s*$` });
  return schema;
}
