import { jitteredInterval } from '../../lib/backoff.js';
import type { Clock } from '../../lib/clock.js';
import { showValue } from '../../lib/format.js';
import { noticeId, type InstanceFacts, type Notice, type ProviderName } from '../../notice/notice.js';
import type { ProviderEvent, WatchContext } from '../types.js';
import { pollSource } from './poll-loop.js';
import { SourceReport } from './source-report.js';

/** A spot `termination-time` item as one cloud writes it (Alibaba, Tencent). */
export interface TerminationTimeItem {
  provider: ProviderName;
  /** The item under /latest/meta-data/. */
  path: string;
  /** The item's text as a time; undefined when it is not a time of the cloud's form. */
  parseTime(text: string): Date | undefined;
  /** A time of that form, for the warning about a value that is not one. */
  example: string;
}

/**
 * Reads a termination-time item: undefined when no reclaim is scheduled (404, empty). A
 * value that is not a time is treated as no notice, as with the AWS legacy item of the
 * same name where such values stand for "nothing scheduled".
 */
export function parseTerminationTime(item: Pick<TerminationTimeItem, 'parseTime'>, body: string | null): { text: string; time: Date | undefined } | undefined {
  const text = body?.trim();
  if (!text) return undefined;
  return { text, time: item.parseTime(text) };
}

export interface TerminationTimeWatch {
  item: TerminationTimeItem;
  clock: Clock;
  pollIntervalMs: number;
  /** The boot notice ids are built on. */
  boot: string;
  /** GETs the item: its body on 200, null on 404; throws on anything else. */
  get(path: string, signal: AbortSignal): Promise<string | null>;
  facts(signal: AbortSignal): Promise<InstanceFacts>;
}

/**
 * Polls a termination-time item every poll interval (±jitter), backing off on failures. A
 * time there is a terminate notice with that time as its deadline. Its id is the boot's,
 * never the time's (which a metadata service may recompute on every answer): it is yielded
 * once per process, and again only with a moved deadline, which the daemon applies to the
 * running plan.
 */
export async function* watchTerminationTime(watch: TerminationTimeWatch, context: WatchContext): AsyncGenerator<ProviderEvent> {
  const { item } = watch;
  /** The termination time last yielded. */
  let yielded: string | undefined;
  const warned = new Set<string>();
  const id = noticeId(item.provider, 'terminate', `${watch.boot}\0${item.path}`);
  yield* pollSource<ProviderEvent>(
    {
      report: new SourceReport(item.path, context),
      clock: watch.clock,
      nextIntervalMs: () => jitteredInterval(watch.pollIntervalMs),
      read: async (signal) => {
        const body = await watch.get(item.path, signal);
        const status = body === null ? 404 : 200;
        const termination = parseTerminationTime(item, body);
        if (termination && termination.time === undefined && !warned.has(termination.text)) {
          warned.add(termination.text);
          context.log.warn({ source: item.path, value: termination.text }, `${item.path} holds ${showValue(termination.text)}, not a time such as ${item.example}; treating it as no notice`);
        }
        if (!termination?.time || termination.time.toISOString() === yielded) return { status, found: [] };
        yielded = termination.time.toISOString();
        const notice: Notice = {
          id,
          provider: item.provider,
          kind: 'terminate',
          deadline: termination.time,
          detectedAt: new Date(),
          instance: await watch.facts(signal),
          raw: termination.text,
        };
        return { status, found: [{ type: 'notice', notice }] };
      },
    },
    context.signal,
  );
}
