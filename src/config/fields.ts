import { constants } from 'node:os';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { durationProblem, formatDuration, parseDuration } from '../lib/duration.js';
import { showValue } from '../lib/format.js';
import { Pattern, PATTERN_SYNTAX } from '../lib/pattern.js';
import { NOTICE_KINDS } from '../notice/notice.js';

/**
 * The longest wait a Node.js timer holds (2^31 - 1 ms, about 24.8 days); a longer one fires
 * after 1 ms, so a 1000h poll interval would poll flat out and a 1000h step timeout would
 * time the step out at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration such as `500ms`, `5s`, `2m`, `1h` (or 0), compiled to milliseconds; a bare number is refused. */
export function duration() {
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
    return ms;
  });
}

/** A duration that must be greater than zero (intervals, timeouts). */
export function positiveDuration() {
  return duration().refine((ms) => ms > 0, {
    error: (issue) => `got ${showValue(formatDuration(Number(issue.input)))}: expected a duration greater than 0`,
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

/** A listen address `host:port` (`127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`), compiled to its parts. */
export function listenAddress() {
  return z.string().transform((value, ctx) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
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
}
