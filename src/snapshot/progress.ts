/** Bytes moved so far against bytes wanted, with the rate and ETA a deadline needs. */
export class TransferProgress {
  private sent = 0;
  private readonly startedAt = Date.now();

  constructor(readonly bytesWanted: number) {}

  add = (bytes: number): void => {
    this.sent += bytes;
  };

  get bytesSent(): number {
    return this.sent;
  }

  /** Bytes per second since the start; undefined until there is something to measure. */
  rate(now = Date.now()): number | undefined {
    const seconds = (now - this.startedAt) / 1000;
    return this.sent > 0 && seconds >= 0.2 ? this.sent / seconds : undefined;
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
