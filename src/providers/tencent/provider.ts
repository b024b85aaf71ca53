import { REAL_CLOCK, type Clock } from '../../lib/clock.js';
import { MetadataError } from '../../lib/errors.js';
import { bootId } from '../../lib/boot-id.js';
import type { InstanceFacts } from '../../notice/notice.js';
import { META_DATA_PATH } from '../metadata/token-session.js';
import { FactsCache, readFactItems, type FactItems } from '../metadata/facts-cache.js';
import { MetadataClient } from '../metadata/client.js';
import { watchTerminationTime, type TerminationTimeItem } from '../metadata/termination-time.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';

/** The name resolves to a link-local address on the VM. */
export const TENCENT_METADATA_URL = 'http://metadata.tencentyun.com';

const FACT_ITEMS: FactItems = [
  ['id', 'instance-id'],
  ['name', 'instance-name'],
  ['zone', 'placement/zone'],
  ['region', 'placement/region'],
];

const TENCENT_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;
/** Tencent writes China Standard Time (UTC+8, no daylight saving) with no zone suffix. */
const UTC_PLUS_8_MS = 8 * 3_600_000;

/** `2018-08-18 12:05:33` in UTC+8, the form of Tencent's termination time; undefined if not that. */
export function parseTencentTime(text: string): Date | undefined {
  const match = TENCENT_TIME.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const asUtc = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls 31 Feb over into March and 25:00 into the next day: reject those.
  const roundTrips =
    asUtc.getUTCFullYear() === year && asUtc.getUTCMonth() === month - 1 && asUtc.getUTCDate() === day && asUtc.getUTCHours() === hour && asUtc.getUTCMinutes() === minute && asUtc.getUTCSeconds() === second;
  return roundTrips ? new Date(asUtc.getTime() - UTC_PLUS_8_MS) : undefined;
}

export const TENCENT_TERMINATION_TIME: TerminationTimeItem = {
  provider: 'tencent',
  path: 'spot/termination-time',
  parseTime: parseTencentTime,
  example: '2018-08-18 12:05:33 (UTC+8)',
};

/**
 * Detection probe: `placement/zone` is a Tencent item (AWS has placement/availability-zone,
 * Alibaba zone-id), answered without a token.
 */
export async function probeTencent(client: MetadataClient, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  const zone = await client.request({ path: `${META_DATA_PATH}placement/zone`, timeoutMs, signal });
  const zoneName = zone.status === 200 ? zone.body.trim() : '';
  return zoneName === '' ? undefined : `GET /latest/meta-data/placement/zone answered ${JSON.stringify(zoneName)}`;
}

/**
 * Tencent Cloud CVM spot: watches `spot/termination-time` (metadata/termination-time.ts),
 * plain GETs (the CVM metadata service has no session tokens).
 */
export class TencentProvider implements Provider {
  readonly name = 'tencent' as const;
  private readonly client: MetadataClient;
  private readonly clock: Clock;
  private readonly facts = new FactsCache((signal, learn) => readFactItems(FACT_ITEMS, (path) => this.get(path, signal), learn));

  constructor(private readonly options: ProviderOptions) {
    this.clock = options.clock ?? REAL_CLOCK;
    this.client = new MetadataClient(options.baseUrl);
  }

  /** Best effort, fetched once and cached once the instance id is known; never throws. */
  instanceFacts(signal: AbortSignal): Promise<InstanceFacts> {
    return this.facts.get(signal);
  }

  watch(context: WatchContext): AsyncIterable<ProviderEvent> {
    return this.run(context);
  }

  private async *run(context: WatchContext): AsyncGenerator<ProviderEvent> {
    // Fetched now so that a notice found later carries the facts without waiting for them.
    void this.instanceFacts(context.signal);
    try {
      yield* watchTerminationTime(
        {
          item: TENCENT_TERMINATION_TIME,
          clock: this.clock,
          pollIntervalMs: this.options.pollIntervalMs,
          boot: this.options.bootId ?? bootId(),
          get: (path, signal) => this.get(path, signal),
          facts: (signal) => this.facts.forNotice(signal),
        },
        context,
      );
    } finally {
      this.client.close();
    }
  }

  /** The item's body on 200, null on 404; throws MetadataError on any other status. */
  private async get(path: string, signal: AbortSignal): Promise<string | null> {
    const response = await this.client.request({ path: META_DATA_PATH + path, timeoutMs: this.options.requestTimeoutMs, signal });
    if (response.status === 200) return response.body;
    if (response.status === 404) return null;
    throw new MetadataError('ERR_METADATA_HTTP', `${path}: HTTP ${response.status}`, response.status);
  }
}
