import { jitteredInterval } from '../../lib/backoff.js';
import { REAL_CLOCK, type Clock } from '../../lib/clock.js';
import { showValue } from '../../lib/format.js';
import { type Logger } from '../../lib/log.js';
import { bootId } from '../../lib/boot-id.js';
import { noticeId, type InstanceFacts, type Notice } from '../../notice/notice.js';
import { META_DATA_PATH, TOKEN_PATH, TokenSession, type TokenProtocol } from '../metadata/token-session.js';
import { FactsCache, readFactItems, type FactItems } from '../metadata/facts-cache.js';
import { parseIsoTime } from '../aws/payloads.js';
import { MetadataClient } from '../metadata/client.js';
import { pollSource } from '../metadata/poll-loop.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';
import { SourceReport } from '../metadata/source-report.js';

export const ALIBABA_METADATA_URL = 'http://100.100.100.200';
export const ALIBABA_DEFAULTS = { hardened: true, tokenTtlSeconds: 21_600 } as const;

const TERMINATION_TIME = 'instance/spot/termination-time';
const TTL_HEADER = 'x-aliyun-ecs-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aliyun-ecs-metadata-token';

const FACT_ITEMS: FactItems = [
  ['id', 'instance-id'],
  ['type', 'instance/instance-type'],
  ['zone', 'zone-id'],
  ['region', 'region-id'],
];

/**
 * ECS hardened mode: a GET refused with 401 or 403 gets a fresh token and one retry; a
 * refusal without hardened mode names the setting to change.
 */
function hardenedModeTokens(hardened: boolean): TokenProtocol {
  const why = hardened ? 'refused even with a fresh hardened-mode token' : 'refused: this instance requires hardened-mode tokens; set alibaba.hardened: true';
  return {
    name: 'hardened-mode token',
    ttlHeader: TTL_HEADER,
    tokenHeader: TOKEN_HEADER,
    refusedStatuses: [401, 403],
    refusal: (path, status) => `${path}: HTTP ${status} (${why})`,
  };
}

/**
 * Detection probe: `zone-id` is an Alibaba item (AWS has placement/availability-zone). A
 * token is asked for first, so an instance that enforces hardened mode is recognised too.
 */
export async function probeAlibaba(client: MetadataClient, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  const token = await client.request({ method: 'PUT', path: TOKEN_PATH, headers: { [TTL_HEADER]: '60' }, timeoutMs, signal });
  const value = token.status === 200 ? token.body.trim() : '';
  const headers: Record<string, string> = value === '' ? {} : { [TOKEN_HEADER]: value };
  const zone = await client.request({ path: `${META_DATA_PATH}zone-id`, headers, timeoutMs, signal });
  const zoneId = zone.status === 200 ? zone.body.trim() : '';
  return zoneId === '' ? undefined : `GET /latest/meta-data/zone-id answered ${JSON.stringify(zoneId)}`;
}

/**
 * Reads the termination-time item: undefined when no reclaim is scheduled (404, empty).
 * A value that is not a time is treated as no notice, as with the AWS legacy item of the
 * same name where such values stand for "nothing scheduled".
 */
export function parseTerminationTime(body: string | null): { text: string; time: Date | undefined } | undefined {
  const text = body?.trim();
  if (!text) return undefined;
  return { text, time: parseIsoTime(text) };
}

/**
 * Alibaba Cloud ECS spot: polls `instance/spot/termination-time` every poll interval
 * (±jitter), backing off on failures. A time there is a terminate notice with that time as
 * its deadline. Its id is the boot's, never the time's (which a metadata service may
 * recompute on every answer): it is yielded once per process, and again only with a moved
 * deadline, which the daemon applies to the running plan. In hardened mode every GET carries a session
 * token; where the token PUT answers 403 or 404 (no hardened mode offered) plain GETs are
 * used until one is refused.
 */
export class AlibabaProvider implements Provider {
  readonly name = 'alibaba' as const;
  private readonly client: MetadataClient;
  private readonly session: TokenSession;
  private readonly clock: Clock;
  private readonly facts = new FactsCache((signal, learn) => readFactItems(FACT_ITEMS, (path) => this.session.get(path, signal), learn));

  /** `log` receives token messages; without it they go to the log of the first watch. */
  constructor(
    private readonly options: ProviderOptions,
    log?: Logger,
  ) {
    this.clock = options.clock ?? REAL_CLOCK;
    this.client = new MetadataClient(options.baseUrl);
    const { hardened, tokenTtlSeconds } = options.alibaba ?? ALIBABA_DEFAULTS;
    this.session = new TokenSession({
      client: this.client,
      log,
      clock: this.clock,
      protocol: hardenedModeTokens(hardened),
      plainGets: hardened ? 'unoffered' : 'always',
      requestTimeoutMs: options.requestTimeoutMs,
      tokenTtlSeconds,
      tokenTimeoutMs: options.requestTimeoutMs,
    });
  }

  /** Best effort, fetched once and cached once the instance id is known; never throws. */
  instanceFacts(signal: AbortSignal): Promise<InstanceFacts> {
    return this.facts.get(signal);
  }

  watch(context: WatchContext): AsyncIterable<ProviderEvent> {
    return this.run(context);
  }

  private async *run(context: WatchContext): AsyncGenerator<ProviderEvent> {
    const { signal } = context;
    this.session.attach(context);
    const boot = this.options.bootId ?? bootId();
    /** The termination time last yielded. */
    let yielded: string | undefined;
    const warned = new Set<string>();
    // Fetched now so that a notice found later carries the facts without waiting for them.
    void this.instanceFacts(signal);
    try {
      yield* pollSource<ProviderEvent>(
        {
          report: new SourceReport(TERMINATION_TIME, context),
          clock: this.clock,
          nextIntervalMs: () => jitteredInterval(this.options.pollIntervalMs),
          read: async (readSignal) => {
            const body = await this.session.get(TERMINATION_TIME, readSignal);
            const status = body === null ? 404 : 200;
            const termination = parseTerminationTime(body);
            if (termination && termination.time === undefined && !warned.has(termination.text)) {
              warned.add(termination.text);
              context.log.warn({ source: TERMINATION_TIME, value: termination.text }, `${TERMINATION_TIME} holds ${showValue(termination.text)}, not a time such as 2015-01-05T18:02:00Z; treating it as no notice`);
            }
            if (!termination?.time || termination.time.toISOString() === yielded) return { status, found: [] };
            yielded = termination.time.toISOString();
            return { status, found: [{ type: 'notice', notice: await this.notice(boot, termination.text, termination.time, readSignal) }] };
          },
        },
        signal,
      );
    } finally {
      this.session.close();
      this.client.close();
    }
  }

  private async notice(boot: string, text: string, time: Date, signal: AbortSignal): Promise<Notice> {
    return {
      id: noticeId('alibaba', 'terminate', `${boot}\0${TERMINATION_TIME}`),
      provider: 'alibaba',
      kind: 'terminate',
      deadline: time,
      detectedAt: new Date(),
      instance: await this.facts.forNotice(signal),
      raw: text,
    };
  }
}
