import { setTimeout } from 'node:timers/promises';

/** Polls `condition` until it holds; throws after `limitMs`. */
export async function until(condition: () => boolean | Promise<boolean>, limitMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    await setTimeout(20);
  }
}
