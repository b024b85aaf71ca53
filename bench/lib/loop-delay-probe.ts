import { appendFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Preloaded into an agent child by a benchmark (`node --import <this file> cli.js run`), so
 * the event-loop delay is measured inside the real agent without any code in the agent
 * itself. Every BENCH_LOOP_PROBE_MS (default 60 s) it appends one JSON line to the file
 * named by BENCH_LOOP_PROBE_FILE: that interval's p50/p99/max and the whole run's p99, in ms.
 */
const file = process.env.BENCH_LOOP_PROBE_FILE;
if (file) {
  const everyMs = Number(process.env.BENCH_LOOP_PROBE_MS ?? 60_000);
  const interval = monitorEventLoopDelay({ resolution: 10 });
  const whole = monitorEventLoopDelay({ resolution: 10 });
  interval.enable();
  whole.enable();
  const ms = (ns: number) => Math.round((ns / 1e6) * 100) / 100;
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
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, everyMs);
  // The probe must never keep an agent alive that wants to exit.
  timer.unref();
}
