import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Runs V8's full garbage collection every `everyMs` unless `busy()`. An agent between notices
 * only polls, and what each poll leaves behind that outlives the young generation piles up in
 * the old one, which V8 collects when it grows, not when a process idles. Side by side for
 * 5.5 minutes at a 1 s poll, the bundled agent's RSS climbed from 78.9 to 83.0 MB; collected
 * once a minute it stayed at 73.0-74.6 MB. Node exposes no call for a collection: the flag
 * puts `gc` into contexts made after it is set, as jest's leak detector takes it.
 * Returns a function that stops it.
 */
export function collectWhileIdle(everyMs: number, busy: () => boolean): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const timer = setInterval(() => {
    if (!busy()) gc();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
