import { appendFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Preloaded into a benchmark's child (`node --expose-gc --import <this file> ...`), so the
 * event-loop delay is measured inside the real agent without any code in the agent itself.
 * Every BENCH_LOOP_PROBE_MS (default 60 s) it appends one JSON line to the file named by
 * BENCH_LOOP_PROBE_FILE: that interval's p50/p99/max and the whole run's p99, in ms (raw
 * histogram values at 10 ms resolution: an idle loop reads about 10 ms), and the heap in use
 * after a full GC when `--expose-gc` is given (what is really retained, free of GC timing).
 */
const file = process.env.BENCH_LOOP_PROBE_FILE;
if (file) {
  const everyMs = Number(process.env.BENCH_LOOP_PROBE_MS ?? 60_000);
  const interval = monitorEventLoopDelay({ resolution: 10 });
  const whole = monitorEventLoopDelay({ resolution: 10 });
  interval.enable();
  whole.enable();
  const ms = (ns: number) => Math.round((ns / 1e6) * 100) / 100;
  const gc = (globalThis as { gc?: () => void }).gc;
  const timer = setInterval(() => {
    const line = {
      at: Date.now(),
      p50: ms(interval.percentile(50)),
      p99: ms(interval.percentile(99)),
      max: ms(interval.max),
      wholeP99: ms(whole.percentile(99)),
      wholeMax: ms(whole.max),
    };
    interval.reset();
    // Collected after the histogram is read, so the forced GC pause is not counted as loop delay.
    gc?.();
    appendFileSync(file, `${JSON.stringify({ ...line, heapAfterGcMb: gc ? Math.round((process.memoryUsage().heapUsed / 1048576) * 100) / 100 : null })}\n`);
  }, everyMs);
  // The probe must never keep a process alive that wants to exit.
  timer.unref();
}
