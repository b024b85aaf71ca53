/** A rate measured over less than this is noise (one part, SDK warm-up); it is not trusted. */
const MIN_SAMPLE_MS = 1000;

/** Bytes moved so far against bytes wanted, with the rate and ETA a deadline needs. */
export class TransferProgress {
  private sent = 0;
  private startedAt: number | undefined;

  constructor(readonly bytesWanted: number) {}

  /** The clock starts with the first transfer, not with file listing or SDK loading. */
  start(now = Date.now()): void {
    this.startedAt ??= now;
  }

  add = (bytes: number): void => {
    this.sent += bytes;
  };

  get bytesSent(): number {
    return this.sent;
  }

  /** Bytes per second since the start; undefined until there is enough to measure. */
  rate(now = Date.now()): number | undefined {
    if (this.startedAt === undefined || this.sent === 0 || now - this.startedAt < MIN_SAMPLE_MS) return undefined;
    return this.sent / ((now - this.startedAt) / 1000);
  }

  /** Milliseconds `bytes` more would take at the current rate; undefined when unknown. */
  timeFor(bytes: number, now = Date.now()): number | undefined {
    const rate = this.rate(now);
    return rate === undefined ? undefined : (bytes / rate) * 1000;
  }

  /** The figures logged and shown in the step's progress. */
  report(deadline: number, now = Date.now()): Record<string, unknown> {
    const rate = this.rate(now);
    const left = Math.max(0, this.bytesWanted - this.sent);
    return {
      bytesDone: this.sent,
      bytesWanted: this.bytesWanted,
      percent: this.bytesWanted ? Math.floor((100 * this.sent) / this.bytesWanted) : 100,
      mbPerSecond: rate === undefined ? null : Number((rate / 1e6).toFixed(1)),
      etaMs: rate === undefined ? null : Math.round((left / rate) * 1000),
      deadlineInMs: Math.max(0, deadline - now),
    };
  }
}
