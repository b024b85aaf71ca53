/**
 * Keeps repeated lines (a metadata source failing over and over) from flooding the log:
 * at most `lines` lines per `windowMs`; the rest are dropped and counted. The next line
 * let through says how many were dropped before it, and the totals per name are kept for
 * metrics (`suppressedLogLines`), so nothing is lost from view, only from the log.
 */
export interface LogLimit {
  lines: number;
  windowMs: number;
}

/** Per metadata source: enough to see a problem start, change and end, never a flood. */
export const SOURCE_LOG_LIMIT: LogLimit = { lines: 5, windowMs: 60_000 };

const suppressedTotals = new Map<string, number>();

/** Lines dropped so far in this process, by limiter name (a metadata source...). */
export function suppressedLogLines(): ReadonlyMap<string, number> {
  return suppressedTotals;
}

export class LogLimiter {
  private windowStart = -Infinity;
  private linesInWindow = 0;
  private dropped = 0;

  constructor(
    private readonly name: string,
    private readonly limit: LogLimit = SOURCE_LOG_LIMIT,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Asks to write one line: undefined means drop it (it was counted); otherwise the number
   * of lines dropped since the last one written, for the caller to mention.
   */
  admit(): number | undefined {
    const now = this.now();
    if (now - this.windowStart >= this.limit.windowMs) {
      this.windowStart = now;
      this.linesInWindow = 0;
    }
    if (this.linesInWindow >= this.limit.lines) {
      this.dropped += 1;
      suppressedTotals.set(this.name, (suppressedTotals.get(this.name) ?? 0) + 1);
      return undefined;
    }
    this.linesInWindow += 1;
    const dropped = this.dropped;
    this.dropped = 0;
    return dropped;
  }
}
