import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * collectWhileIdle (src/lib/idle-collection.ts) runs a full collection, while the agent is not
 * busy, once the heap grew by a given amount. In a Node of its own (it sets a V8 flag),
 * collections are counted as the process sees them (PerformanceObserver 'gc' entries): V8
 * marks the ones a `gc()` call forced.
 */
const module = fileURLToPath(new URL('../../src/lib/idle-collection.ts', import.meta.url));

test('a full collection is forced when the heap grew while not busy; none while busy, none without growth, none once stopped', () => {
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
    const kept = [];
    // 4 MiB of strings kept each time: more than the 1 MiB of growth asked for.
    const grow = () => { for (let i = 0; i < 4096; i += 1) kept.push('x'.repeat(1024) + i); };
    const stop = collectWhileIdle({ checkEveryMs: 50, growthBytes: 1024 * 1024, busy: () => busy });
    // The collection's timer is unref'd: this one keeps the process up meanwhile.
    const keepAlive = setInterval(() => undefined, 1000);
    grow();
    await sleep(300);
    const whileBusy = forced;
    busy = false;
    await sleep(300);
    const afterGrowth = forced;
    await sleep(300);
    const withoutGrowth = forced - afterGrowth;
    grow();
    await sleep(300);
    const grownAgain = forced - afterGrowth - withoutGrowth;
    stop();
    grow();
    await sleep(300);
    observer.disconnect();
    clearInterval(keepAlive);
    console.log(JSON.stringify({ whileBusy, afterGrowth, withoutGrowth, grownAgain, afterStop: forced - afterGrowth - withoutGrowth - grownAgain }));
  `;
  const counts = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }).trim()) as Record<string, number>;
  expect(counts).toEqual({ whileBusy: 0, afterGrowth: 1, withoutGrowth: 0, grownAgain: 1, afterStop: 0 });
});
