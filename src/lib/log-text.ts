/*
 * The log as a person at a terminal reads it: one line per event, `time LEVEL message
 * key=value ...`, instead of the JSON that journald, kubectl and scripts read.
 */

export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The format asked for, else text where a person is reading (a terminal), JSON elsewhere. */
export function logFormatFor(asked: string | undefined, isTTY: boolean): LogFormat {
  if (asked !== undefined) return asked as LogFormat;
  return isTTY ? 'text' : 'json';
}

/** Fields every line has, shown in front (time, level, message) or not at all. */
const FRAME = new Set(['level', 'severity', 'time', 'name', 'msg', 'pid', 'hostname']);

/** A value as `key=value` shows it: bare when that stays one unambiguous word, else JSON. */
function showValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/** An error as `err=`: its code and message (the stack stays in the JSON format). */
function showError(err: unknown): string {
  if (err === null || typeof err !== 'object') return showValue(err);
  const { code, message } = err as { code?: unknown; message?: unknown };
  return showValue(code === undefined ? message : `${String(code)}: ${String(message)}`);
}

/** One JSON log line (as pino writes it, newline included) as one text line. */
export function formatTextLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 24) : '';
  const level = String(entry.level ?? '').toUpperCase().padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key, value]) => !FRAME.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${key === 'err' ? showError(value) : showValue(value)}`);
  return `${[time, level, String(entry.msg ?? ''), ...fields].filter(Boolean).join(' ')}\n`;
}
