import type { ProviderEvent } from '../types.js';

/** One independent source of a provider: runs until `signal` aborts, emitting events. */
export type SourceLoop = (emit: (event: ProviderEvent) => void, signal: AbortSignal) => Promise<void>;

/**
 * Runs several source loops at once and yields their events as they come, so a slow or
 * failing source never delays a notice found by another. Stops every loop (and waits for
 * them) when the signal aborts or the consumer stops iterating.
 */
export async function* mergeLoops(signal: AbortSignal, loops: SourceLoop[]): AsyncGenerator<ProviderEvent> {
  const stop = new AbortController();
  const abort = () => stop.abort();
  if (signal.aborted) abort();
  else signal.addEventListener('abort', abort, { once: true });

  const queue: ProviderEvent[] = [];
  let wake: (() => void) | undefined;
  const notify = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  stop.signal.addEventListener('abort', notify, { once: true });
  let failure: { error: unknown } | undefined;
  const running = loops.map((loop) =>
    loop((event) => {
      queue.push(event);
      notify();
    }, stop.signal).catch((error: unknown) => {
      failure ??= { error };
      stop.abort();
    }),
  );
  try {
    for (;;) {
      while (queue.length > 0 && !stop.signal.aborted) yield queue.shift()!;
      if (failure) throw failure.error;
      if (stop.signal.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stop.abort();
    signal.removeEventListener('abort', abort);
    await Promise.all(running);
  }
}
