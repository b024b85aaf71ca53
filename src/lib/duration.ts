const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const BARE_NUMBER = /^\d+(?:\.\d+)?$/;

/**
 * Parses `250ms`, `1s`, `1.5m`, `2h` (and a lone `0`) into milliseconds. A bare number is
 * refused, so `pollInterval: 5` cannot mean 5 ms to one reader and 5 s to another. Returns
 * undefined for anything else so the caller can name the field (durationProblem says why).
 */
export function parseDuration(input: unknown): number | undefined {
  if (input === 0) return 0;
  if (typeof input !== 'string') return undefined;
  const text = input.trim();
  if (text === '0') return 0;
  const match = DURATION_PATTERN.exec(text);
  if (!match) return undefined;
  const [, amount, unit] = match;
  const ms = Math.round(Number(amount) * UNIT_MS[unit!]!);
  // Hundreds of digits overflow to Infinity, which no timer or date can use.
  return Number.isFinite(ms) ? ms : undefined;
}

/** Why parseDuration refused `input`, for a message that follows `got <input>: `. */
export function durationProblem(input: unknown): string {
  const text = typeof input === 'number' ? String(input) : typeof input === 'string' ? input.trim() : undefined;
  if (text?.startsWith('-')) return 'a duration cannot be negative';
  if (text !== undefined && BARE_NUMBER.test(text)) {
    return `a duration needs a unit: write ${text}s for seconds (or ${text}ms, ${text}m, ${text}h); only 0 stands alone`;
  }
  return 'expected a duration such as 500ms, 5s, 2m or 1h';
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  // Rounded once, then split: rounding the parts apart printed 119,995 ms as 1m60s.
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
}
