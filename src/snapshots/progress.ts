/** A rate measured over less than this is noise (one part, SDK warm-up); it is not trusted. */
const MIN_SAMPLE_MS = 1000;

/**
 * Bytes moved so far against bytes wanted, with the rate and ETA a deadline needs. The rate is
 * measured over the time bytes were in flight only: a pause with nothing to send (a small file
 * stored, then a large one read and hashed whose chunks are all stored) is not slowness, and
 * counting it once had the gate refuse every later chunk at "0.0 MB/s".
 */
export class TransferProgress {
  private sent = 0;
  private begun = 0;
  /** Time with bytes in flight, before `busySince`. */
  private busyMs = 0;
  private busySince: number | undefined;

  constructor(readonly bytesWanted: number) {}

  /** `bytes` start moving: the clock runs while any started byte is not through. */
  begin(bytes: number, now = Date.now()): void {
    this.busySince ??= now;
    this.begun += bytes;
  }

  add = (bytes: number, now = Date.now()): void => {
    this.sent += bytes;
    if (this.busySince !== undefined && this.sent >= this.begun) {
      this.busyMs += now - this.busySince;
      this.busySince = undefined;
    }
  };

  get bytesSent(): number {
    return this.sent;
  }

  /** Bytes started and not yet through. */
  get inFlight(): number {
    return Math.max(0, this.begun - this.sent);
  }

  /** Bytes per second while busy; undefined until there is enough to measure. */
  rate(now = Date.now()): number | undefined {
    const busy = this.busyMs + (this.busySince === undefined ? 0 : now - this.busySince);
    if (this.sent === 0 || busy < MIN_SAMPLE_MS) return undefined;
    return this.sent / (busy / 1000);
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
