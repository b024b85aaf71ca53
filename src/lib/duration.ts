const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/**
 * Parses `250ms`, `1s`, `1.5m`, `2h` (or a bare number of milliseconds) into milliseconds.
 * Returns undefined for anything else so the caller can name the field in its message.
 */
export function parseDuration(input: unknown): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  if (typeof input !== 'string') return undefined;
  const match = DURATION_PATTERN.exec(input.trim());
  if (!match) return undefined;
  const [, amount, unit] = match;
  const ms = Math.round(Number(amount) * UNIT_MS[unit!]!);
  // Hundreds of digits overflow to Infinity, which no timer or date can use.
  return Number.isFinite(ms) ? ms : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}
