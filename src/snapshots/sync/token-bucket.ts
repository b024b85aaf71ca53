import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Paces bytes to a rate: each take() spends tokens that refill at `bytesPerSecond`, and waits
 * while the balance is below zero. The bucket starts empty and holds at most half a second
 * of tokens, so after an idle spell any 10 s window carries at most 5 % over the rate.
 * `lift()` lets everything through at once (an advisory notice, a notice-time flush).
 */
export class TokenBucket {
  private tokens = 0;
  private last: number;
  private liftedBy = 0;
  /** Aborted by lift(): a take() waiting for tokens goes ahead at once. */
  private wake = new AbortController();

  constructor(
    readonly bytesPerSecond: number | null,
    private readonly now: () => number = Date.now,
  ) {
    this.last = now();
  }

  /** The cap in force now: null when there is none or it is lifted. */
  get cap(): number | null {
    return this.liftedBy > 0 ? null : this.bytesPerSecond;
  }

  /** Lifts the cap until the returned function is called (lifts nest). */
  lift(): () => void {
    this.liftedBy += 1;
    this.wake.abort();
    this.wake = new AbortController();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.liftedBy -= 1;
      this.refill();
      this.tokens = Math.min(this.tokens, 0);
    };
  }

  /** Resolves once `bytes` may be sent; rejects when `signal` aborts. */
  async take(bytes: number, signal: AbortSignal): Promise<void> {
    const rate = this.cap;
    if (rate === null) return;
    this.refill();
    this.tokens -= bytes;
    if (this.tokens >= 0) return;
    const waited = AbortSignal.any([signal, this.wake.signal]);
    await sleep((-this.tokens / rate) * 1000, undefined, { signal: waited }).catch(() => signal.throwIfAborted());
  }

  /**
   * Spends tokens for `bytes` when there are any now (the balance may then go below zero, and
   * later sends wait it out), without waiting: false when the sender must come back later.
   */
  takeNow(bytes: number): boolean {
    if (this.cap === null) return true;
    this.refill();
    if (this.tokens <= 0) return false;
    this.tokens -= bytes;
    return true;
  }

  private refill(): void {
    const time = this.now();
    const rate = this.bytesPerSecond ?? 0;
    this.tokens = Math.min(rate / 2, this.tokens + ((time - this.last) / 1000) * rate);
    this.last = time;
  }
}
