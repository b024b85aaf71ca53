import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACTED = '[REDACTED]';
/** Values resolved from ${env:..}/${file:..} references; scrubbed from every log line. */
const secretValues = new Set<string>();

/** Remember a secret so no log line can ever carry it, whatever field it ends up in. */
export function registerSecret(value: string): void {
  // Very short values would scrub ordinary words out of every line.
  if (value.length >= 4) secretValues.add(value);
}

export function scrubSecrets(text: string): string {
  let scrubbed = text;
  for (const secret of secretValues) {
    if (scrubbed.includes(secret)) scrubbed = scrubbed.split(secret).join(REDACTED);
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret && scrubbed.includes(escaped)) scrubbed = scrubbed.split(escaped).join(REDACTED);
  }
  return scrubbed;
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

export interface LogOptions {
  level?: LevelWithSilent;
  destination?: NodeJS.WritableStream | { write(chunk: string): void };
}

/** pino JSON lines on stdout, as journald and kubectl read them. */
export function createLogger(options: LogOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level ?? 'info',
      base: { name: 'preemptd' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      hooks: { streamWrite: scrubSecrets },
    },
    destination as pino.DestinationStream,
  );
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
