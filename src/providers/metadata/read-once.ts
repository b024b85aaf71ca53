import { MetadataError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { InstanceFacts } from '../../notice/notice.js';
import { ImdsSession } from './token-session.js';
import { MetadataClient } from './client.js';
import type { MetadataRead, Provider, ProviderEvent, ProviderOptions } from '../types.js';

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

export interface TokenProbe {
  /** The token PUT as the provider reports it; undefined when it never ran. */
  read: MetadataRead | undefined;
  /** The PUT got no answer within aws.tokenTimeout: the IMDSv2 hop-limit symptom. */
  timedOut: boolean;
}

/**
 * Asks IMDS for one IMDSv2 token through the provider's own session code, so the failure
 * keeps its kind (a timeout is told apart from a refusal). Never falls back to IMDSv1.
 */
export async function probeAwsToken(options: ProviderOptions, log: Logger, signal: AbortSignal): Promise<TokenProbe> {
  const client = new MetadataClient(options.baseUrl);
  const session = new ImdsSession({ client, log, requestTimeoutMs: options.requestTimeoutMs, ...options.aws, allowImdsV1: false });
  let read: MetadataRead | undefined;
  const onRead = (report: MetadataRead) => {
    if (report.source === 'token') read ??= report;
  };
  try {
    await session.get('instance-id', signal, onRead);
    return { read, timedOut: false };
  } catch (error) {
    return { read, timedOut: error instanceof MetadataError && error.code === 'ERR_TOKEN_TIMEOUT' };
  } finally {
    client.close();
  }
}
