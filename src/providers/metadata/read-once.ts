import type { Logger } from '../../lib/log.js';
import type { InstanceFacts } from '../../notice/notice.js';
import type { MetadataRead, Provider, ProviderEvent } from '../types.js';

export interface ReadOnceOptions {
  /** Give up after this long even when nothing answered. */
  timeoutMs: number;
  /** Once a source has answered, stop after this long without another read. */
  quietMs?: number;
  log: Logger;
}

export interface ReadOnceResult {
  /** Every metadata request the provider made, in order (the token first on AWS). */
  reads: MetadataRead[];
  /** Notices (or withdrawals) pending right now. */
  events: ProviderEvent[];
  facts: InstanceFacts;
  /** True when the time limit ended it before any source answered. */
  timedOut: boolean;
}

/** Reads that only prepare the real ones (session tokens) do not end the wait. */
const PREPARATORY_SOURCES = new Set(['token']);
const DEFAULT_QUIET_MS = 100;

/**
 * Reads the metadata service once, through the provider's own watch loop, so a check
 * exercises exactly what the daemon does (token, headers, paths): runs the watch until its
 * sources have answered and gone quiet, then stops it.
 */
export async function readOnce(provider: Provider, options: ReadOnceOptions): Promise<ReadOnceResult> {
  const controller = new AbortController();
  const reads: MetadataRead[] = [];
  const events: ProviderEvent[] = [];
  let answered = false;
  let quietTimer: NodeJS.Timeout | undefined;
  const stop = () => controller.abort();
  const limit = setTimeout(stop, options.timeoutMs);
  const onRead = (read: MetadataRead) => {
    reads.push(read);
    if (!PREPARATORY_SOURCES.has(read.source)) answered = true;
    if (!answered) return;
    clearTimeout(quietTimer);
    quietTimer = setTimeout(stop, options.quietMs ?? DEFAULT_QUIET_MS);
  };
  const facts = provider.instanceFacts(controller.signal).catch(() => ({}));
  try {
    for await (const event of provider.watch({ signal: controller.signal, log: options.log, onRead })) events.push(event);
  } finally {
    clearTimeout(limit);
    clearTimeout(quietTimer);
    controller.abort();
  }
  return { reads, events, facts: await facts, timedOut: !answered };
}
