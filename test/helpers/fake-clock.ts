import type { Clock } from '../../src/lib/clock.js';

interface Sleeper {
  at: number;
  wake(): void;
}

/**
 * A clock for provider tests: intervals and backoffs cost no real time, and tests read the
 * waits a provider chose (`sleeps`) instead of timing it. Running (the default), while
 * anything sleeps it jumps to the earliest wake-up, one jump per turn of the event loop so
 * the callbacks already due run first: a provider goes as fast as its requests allow.
 * Stopped (`{ running: false }`), only `advance` moves it.
 */
export class FakeClock implements Clock {
  private time = 1_000_000;
  private readonly sleepers = new Set<Sleeper>();
  private jumpScheduled = false;
  private readonly running: boolean;
  /** Every wait asked for, in ms, in order. */
  readonly sleeps: number[] = [];

  constructor(options: { running?: boolean } = {}) {
    this.running = options.running ?? true;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper: Sleeper = {
        at: this.time + Math.max(ms, 0),
        wake: () => {
          this.sleepers.delete(sleeper);
          signal?.removeEventListener('abort', sleeper.wake);
          resolve();
        },
      };
      this.sleepers.add(sleeper);
      signal?.addEventListener('abort', sleeper.wake, { once: true });
      if (this.running) this.scheduleJump();
    });
  }

  /** Moves time on by `ms`, waking every sleep due by then. */
  advance(ms: number): void {
    this.time += ms;
    for (const sleeper of [...this.sleepers]) if (sleeper.at <= this.time) sleeper.wake();
  }

  private scheduleJump(): void {
    if (this.jumpScheduled) return;
    this.jumpScheduled = true;
    setImmediate(() => {
      this.jumpScheduled = false;
      if (this.sleepers.size === 0) return;
      const next = Math.min(...[...this.sleepers].map((sleeper) => sleeper.at));
      this.advance(Math.max(next - this.time, 0));
      // Some may wait on a sleeper still due (a token backoff), with nothing else to move time.
      if (this.sleepers.size > 0) this.scheduleJump();
    });
  }
}
