import { FactsCache } from '../../src/providers/metadata/facts-cache.js';
import type { InstanceFacts } from '../../src/notice/notice.js';

const signal = new AbortController().signal;

test('facts are fetched once and kept once the instance id is known', async () => {
  let fetches = 0;
  const cache = new FactsCache(async () => {
    fetches += 1;
    return { id: 'i-1', type: 'g5.xlarge' };
  });
  const [first, second] = await Promise.all([cache.get(signal), cache.get(signal)]);
  expect(first).toEqual({ id: 'i-1', type: 'g5.xlarge' });
  expect(second).toBe(first);
  await cache.get(signal);
  expect(fetches).toBe(1);
});

test('a partial answer without an id is fetched again next time', async () => {
  const answers: InstanceFacts[] = [{ type: 'g5.xlarge' }, { id: 'i-2' }];
  const cache = new FactsCache(async () => answers.shift() ?? {});
  expect(await cache.get(signal)).toEqual({ type: 'g5.xlarge' });
  expect(await cache.get(signal)).toEqual({ id: 'i-2' });
});

test('within() gives up on a slow metadata service instead of delaying a notice', async () => {
  let fetches = 0;
  let answer!: (facts: InstanceFacts) => void;
  // A metadata service that answers only when the test lets it.
  const cache = new FactsCache(() => {
    fetches += 1;
    return new Promise((resolve) => (answer = resolve));
  });
  // An empty answer, not the fetch's: within() returned before the fetch did.
  expect(await cache.within(30, signal)).toEqual({});
  // The fetch it started still completes and fills the cache for the next notice.
  answer({ id: 'i-3' });
  await cache.get(signal);
  expect(fetches).toBe(1);
  expect(await cache.within(30, signal)).toEqual({ id: 'i-3' });
});

test('within() that gives up hands over the facts that arrived before it did', async () => {
  let answer!: (facts: InstanceFacts) => void;
  // The instance id arrives at once; the rest of the fetch waits for the test.
  const cache = new FactsCache((_signal, learn) => {
    learn({ id: 'i-4' });
    return new Promise((resolve) => (answer = resolve));
  });
  expect(await cache.within(30, signal)).toEqual({ id: 'i-4' });
  answer({ id: 'i-4', type: 'g5.xlarge' });
  expect(await cache.get(signal)).toEqual({ id: 'i-4', type: 'g5.xlarge' });
});
