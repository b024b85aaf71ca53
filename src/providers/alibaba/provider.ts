import { REAL_CLOCK, type Clock } from '../../lib/clock.js';
import { type Logger } from '../../lib/log.js';
import { bootId } from '../../lib/boot-id.js';
import type { InstanceFacts } from '../../notice/notice.js';
import { META_DATA_PATH, TOKEN_PATH, TokenSession, type TokenProtocol } from '../metadata/token-session.js';
import { FactsCache, readFactItems, type FactItems } from '../metadata/facts-cache.js';
import { parseIsoTime } from '../aws/payloads.js';
import { MetadataClient } from '../metadata/client.js';
import { watchTerminationTime, type TerminationTimeItem } from '../metadata/termination-time.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';

export const ALIBABA_METADATA_URL = 'http://100.100.100.200';
export const ALIBABA_DEFAULTS = { hardened: true, tokenTtlSeconds: 21_600 } as const;

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

/** Alibaba writes an ISO 8601 UTC time: `2015-01-05T18:02:00Z`. */
export const ALIBABA_TERMINATION_TIME: TerminationTimeItem = {
  provider: 'alibaba',
  path: 'instance/spot/termination-time',
  parseTime: parseIsoTime,
  example: '2015-01-05T18:02:00Z',
};

/**
 * Alibaba Cloud ECS spot: watches `instance/spot/termination-time` (metadata/termination-time.ts).
 * In hardened mode every GET carries a session token; where the token PUT answers 403 or 404 (no hardened mode offered) plain GETs are
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
    this.session.attach(context);
    // Fetched now so that a notice found later carries the facts without waiting for them.
    void this.instanceFacts(context.signal);
    try {
      yield* watchTerminationTime(
        {
          item: ALIBABA_TERMINATION_TIME,
          clock: this.clock,
          pollIntervalMs: this.options.pollIntervalMs,
          boot: this.options.bootId ?? bootId(),
          get: (path, signal) => this.session.get(path, signal),
          facts: (signal) => this.facts.forNotice(signal),
        },
        context,
      );
    } finally {
      this.session.close();
      this.client.close();
    }
  }
}
