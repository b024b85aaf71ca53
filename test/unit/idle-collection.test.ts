import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * collectWhileIdle (src/lib/idle-collection.ts) runs a full collection on a timer while the
 * agent is not busy. In a Node of its own (it sets a V8 flag), collections are counted as the
 * process sees them (PerformanceObserver 'gc' entries): V8 marks the ones a `gc()` call forced.
 */
const module = fileURLToPath(new URL('../../src/lib/idle-collection.ts', import.meta.url));

test('a full collection is forced every interval while not busy, none while busy, none once stopped', () => {
  const script = `
    import { constants, PerformanceObserver } from 'node:perf_hooks';
    import { setTimeout as sleep } from 'node:timers/promises';
    const { collectWhileIdle } = await import(${JSON.stringify(module)});
    let forced = 0;
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR && entry.detail.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) forced += 1;
    });
    observer.observe({ entryTypes: ['gc'] });
    let busy = true;
    const stop = collectWhileIdle(50, () => busy);
    // The collection's timer is unref'd: this one keeps the process up meanwhile.
    const keepAlive = setInterval(() => undefined, 1000);
    await sleep(400);
    const whileBusy = forced;
    busy = false;
    await sleep(400);
    const whileIdle = forced;
    stop();
    await sleep(300);
    observer.disconnect();
    clearInterval(keepAlive);
    console.log(JSON.stringify({ whileBusy, whileIdle, afterStop: forced - whileIdle }));
  `;
  const counts = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }).trim()) as Record<string, number>;
  expect(counts.whileBusy).toBe(0);
  expect(counts.whileIdle).toBeGreaterThanOrEqual(3);
  expect(counts.afterStop).toBe(0);
});
