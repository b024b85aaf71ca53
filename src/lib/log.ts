import { pino, type Logger, type LevelWithSilent } from 'pino';
import { severityOf, withJournalPriority, writesToJournal } from './log-levels.js';
import { formatTextLine, type LogFormat } from './log-text.js';

export type { Logger };

const REDACTED = '[REDACTED]';
/**
 * Secrets at least this long are scrubbed wherever they appear. Shorter ones (a PIN, a
 * two-letter region given as a reference) are scrubbed too, but only as whole tokens, not
 * next to a letter or digit: scrubbing `ab` inside every word would garble every line, while
 * a short secret standing alone (`/pin/123/`, `key=ab`) is exactly what must not leak.
 */
const SUBSTRING_MIN = 4;

/** Every form a secret can take on its way out, longest first; short ones as token patterns. */
let substrings: string[] = [];
let tokens: RegExp[] = [];
const registered = new Set<string>();

/**
 * The forms a secret takes in text we produce: as is, URL-encoded (a path segment as the
 * WHATWG URL parser writes it, encodeURI/encodeURIComponent, a form-encoded query value),
 * and each of those escaped as inside a JSON string.
 */
function secretForms(value: string): string[] {
  const path = value.replace(/[\0-\x20"#<>?`{}\x7f-\u{10ffff}]/gu, (char) => encodeURIComponent(char));
  const encoded = [value, path, encodeURI(value), encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)];
  return [...new Set(encoded.flatMap((form) => [form, JSON.stringify(form).slice(1, -1)]))];
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Remember a secret so nothing that leaves the process carries it, whatever field it ends up in. */
export function registerSecret(value: string): void {
  if (value.length === 0 || registered.has(value)) return;
  registered.add(value);
  const forms = secretForms(value);
  if (value.length >= SUBSTRING_MIN) {
    substrings = [...substrings, ...forms].sort((a, b) => b.length - a.length);
  } else {
    const alternatives = forms.sort((a, b) => b.length - a.length).map(escapeRegExp).join('|');
    tokens = [...tokens, new RegExp(`(?<![A-Za-z0-9])(?:${alternatives})(?![A-Za-z0-9])`, 'g')];
  }
}

function scrubTokens(text: string): string {
  let scrubbed = text;
  for (const token of tokens) scrubbed = scrubbed.replace(token, REDACTED);
  return scrubbed;
}

function scrubSubstrings(text: string): string {
  let scrubbed = text;
  for (const form of substrings) if (scrubbed.includes(form)) scrubbed = scrubbed.split(form).join(REDACTED);
  return scrubbed;
}

/** Plain text (a message, a report): every registered secret, in every form, is replaced. */
export function scrubSecrets(text: string): string {
  return scrubTokens(scrubSubstrings(text));
}

/**
 * A JSON log line: short secrets are scrubbed inside string literals only, so a one-digit
 * secret cannot turn `"attempts":1` into a line that is no longer JSON.
 */
function scrubJsonLine(line: string): string {
  const scrubbed = scrubSubstrings(line);
  return tokens.length === 0 ? scrubbed : scrubbed.replace(/"(?:[^"\\]|\\.)*"/g, scrubTokens);
}

/** A copy of a JSON-like value (a step's detail) with every string scrubbed. */
export function scrubValue<T>(value: T): T {
  if (typeof value === 'string') return scrubSecrets(value) as T;
  if (Array.isArray(value)) return value.map(scrubValue) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, scrubValue(entry)])) as T;
  }
  return value;
}

/** Field paths that carry secrets by their nature, whatever their value. */
export const REDACT_PATHS = [
  '*.url',
  '*.webhookUrl',
  '*.token',
  '*.botToken',
  '*.secret',
  '*.password',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["x-api-key"]',
  '*.headers["X-Api-Key"]',
  '*.headers["x-aws-ec2-metadata-token"]',
  '*.headers["X-aws-ec2-metadata-token"]',
];

/** An error as every log line carries it, under `err`: pino's err serializer shape. */
export interface LoggedError {
  /** The error's class, e.g. `StepFailure`, `MetadataRequestError`, `TypeError`. */
  type: string;
  message: string;
  stack?: string;
  /** A preemptd code (`ERR_STEP_FAILED`) or a platform one (`ECONNREFUSED`). */
  code?: string | number;
}

/**
 * The `err` field of a log line, whatever was thrown. Message and stack are scrubbed of
 * registered secrets here as well as on the way out, as the recorder scrubs step errors.
 */
export function serializeError(error: unknown): LoggedError {
  if (!(error instanceof Error)) return { type: 'Error', message: scrubSecrets(String(error)) };
  const code = (error as { code?: unknown }).code;
  return {
    type: error.constructor.name || error.name,
    message: scrubSecrets(error.message),
    ...(error.stack === undefined ? {} : { stack: scrubSecrets(error.stack) }),
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
  };
}

export interface LogOptions {
  level?: LevelWithSilent;
  destination?: NodeJS.WritableStream | { write(chunk: string): void };
  /** Prefix each line with its syslog priority; by default when stdout is the journal (JOURNAL_STREAM). */
  journal?: boolean;
  /** `text` for a person at a terminal (simulator, restore); JSON lines by default. */
  format?: LogFormat;
  /** Write each line before returning (stdout only): for a line the process may exit right after. */
  sync?: boolean;
}

/** Each line as it leaves: scrubbed, then as text or with its journal priority when asked. */
function outputLine(journal: boolean, format: LogFormat): (line: string) => string {
  if (format === 'text') return (line) => formatTextLine(scrubJsonLine(line));
  return journal ? (line) => withJournalPriority(scrubJsonLine(line)) : scrubJsonLine;
}

/** pino JSON lines on stdout, as journald and kubectl read them (or text lines for a person). */
export function createLogger(options: LogOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: options.sync ?? false });
  const journal = options.journal ?? (options.destination === undefined && writesToJournal(process.env, 1));
  return pino(
    {
      level: options.level ?? 'info',
      base: { name: 'preemptd' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // `severity` beside `level` (added, never renamed): cloud logging agents read that one.
      formatters: { level: (label) => ({ level: label, severity: severityOf(label) }) },
      // Every `{ err: error }` a line carries, in one shape.
      serializers: { err: serializeError },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      hooks: { streamWrite: outputLine(journal, options.format ?? 'json') },
    },
    destination as pino.DestinationStream,
  );
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
