import type { IncomingMessage, ServerResponse } from 'node:http';
import { PreemptdError } from '../lib/errors.js';
import { itemOrListing } from './directory.js';
import { cannotShow, type SimulatedCloud, type SimulatedCloudOptions, type TriggerSpec } from './cloud.js';

const META_DATA_PREFIX = '/latest/meta-data/';
const TERMINATION_TIME = 'spot/termination-time';
/** Tencent's termination time is about 2 minutes after the notice appears. */
const DEFAULT_LEAD_MS = 2 * 60_000;
const UTC_PLUS_8_MS = 8 * 3_600_000;

/** `2018-08-18 12:05:33`: whole seconds in UTC+8 with no zone suffix, as Tencent writes it. */
export function tencentTime(date: Date): string {
  return new Date(date.getTime() + UTC_PLUS_8_MS).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
}

/**
 * Tencent Cloud CVM metadata service (metadata.tencentyun.com): plain GETs with no session
 * tokens, plain-text items under /latest/meta-data/, and the spot termination-time item
 * that answers 404 until a reclaim is scheduled.
 */
export class SimulatedTencent implements SimulatedCloud {
  readonly provider = 'tencent' as const;
  private readonly items: Record<string, string>;
  private terminationTime: string | undefined;

  constructor(options: SimulatedCloudOptions) {
    this.items = {
      'instance-id': options.instanceId ?? 'ins-simul8ed',
      'instance-name': options.instanceName ?? 'preemptd-sim',
      'placement/region': 'ap-guangzhou',
      'placement/zone': 'ap-guangzhou-3',
      'instance/instance-chargetype': 'SPOTPAID',
    };
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0]!;
    if (!path.startsWith(META_DATA_PREFIX)) return text(response, 404, 'Not Found');
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(response, 405, 'Method Not Allowed');
    const item = path.slice(META_DATA_PREFIX.length);
    // The real service lists directories (`/latest/meta-data/`, `placement/`) like Alibaba's.
    const value = itemOrListing(this.terminationTime === undefined ? this.items : { ...this.items, [TERMINATION_TIME]: this.terminationTime }, item);
    if (value === undefined) return text(response, 404, 'Not Found');
    text(response, 200, value);
  }

  trigger(spec: TriggerSpec): void {
    if (spec.kind !== 'terminate') throw cannotShow(this.provider, spec.kind);
    const time = spec.time ? new Date(spec.time) : new Date(Date.now() + (spec.leadMs ?? DEFAULT_LEAD_MS));
    if (Number.isNaN(time.getTime())) throw new PreemptdError('ERR_USAGE', `trigger time ${JSON.stringify(spec.time)} is not a date; expected ISO 8601`);
    this.terminationTime = tencentTime(time);
  }

  clear(): void {
    this.terminationTime = undefined;
  }

  close(): void {}
}

function text(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}
