import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimulatedCloud, SimulatedCloudOptions, TriggerSpec } from './cloud.js';
import { META_DATA_PREFIX, TerminationTimeTree, textAnswer as text } from './termination-time-tree.js';

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
  private readonly tree: TerminationTimeTree;

  constructor(options: SimulatedCloudOptions) {
    // Tencent's termination time is about 2 minutes after the notice appears.
    const format = { item: 'spot/termination-time', defaultLeadMs: 2 * 60_000, write: tencentTime };
    this.tree = new TerminationTimeTree(this.provider, {
      'instance-id': options.instanceId ?? 'ins-simul8ed',
      'instance-name': options.instanceName ?? 'preemptd-sim',
      'placement/region': 'ap-guangzhou',
      'placement/zone': 'ap-guangzhou-3',
      'instance/instance-chargetype': 'SPOTPAID',
    }, format);
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0]!;
    if (!path.startsWith(META_DATA_PREFIX)) return text(response, 404, 'Not Found');
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(response, 405, 'Method Not Allowed');
    // The real service lists directories (`/latest/meta-data/`, `placement/`) like Alibaba's.
    this.tree.respond(path, response);
  }

  trigger(spec: TriggerSpec): void {
    this.tree.trigger(spec);
  }

  clear(): void {
    this.tree.clear();
  }

  close(): void {}
}
