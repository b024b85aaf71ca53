import type { ServerResponse } from 'node:http';
import { PreemptdError } from '../lib/errors.js';
import type { ProviderName } from '../notice/notice.js';
import { cannotShow, type TriggerSpec } from './cloud.js';
import { itemOrListing } from './directory.js';

/** Where Alibaba's and Tencent's services keep their plain-text items. */
export const META_DATA_PREFIX = '/latest/meta-data/';

export interface TerminationTimeFormat {
  /** The item's path under META_DATA_PREFIX. */
  item: string;
  /** How far ahead the time lies when a trigger names none. */
  defaultLeadMs: number;
  /** The time as the cloud writes it. */
  write(time: Date): string;
}

/**
 * The metadata tree Alibaba's and Tencent's services share: flat plain-text items listed as
 * directories, and a spot termination-time item that answers 404 until a reclaim is scheduled.
 */
export class TerminationTimeTree {
  private terminationTime: string | undefined;

  constructor(
    private readonly provider: ProviderName,
    private readonly items: Readonly<Record<string, string>>,
    private readonly format: TerminationTimeFormat,
  ) {}

  /** Answers a GET of `path` (under META_DATA_PREFIX): a value or a listing, else 404. */
  respond(path: string, response: ServerResponse): void {
    const items = this.terminationTime === undefined ? this.items : { ...this.items, [this.format.item]: this.terminationTime };
    const value = itemOrListing(items, path.slice(META_DATA_PREFIX.length));
    if (value === undefined) textAnswer(response, 404, 'Not Found');
    else textAnswer(response, 200, value);
  }

  trigger(spec: TriggerSpec): void {
    if (spec.kind !== 'terminate') throw cannotShow(this.provider, spec.kind);
    const time = spec.time ? new Date(spec.time) : new Date(Date.now() + (spec.leadMs ?? this.format.defaultLeadMs));
    if (Number.isNaN(time.getTime())) throw new PreemptdError('ERR_USAGE', `trigger time ${JSON.stringify(spec.time)} is not a date; expected ISO 8601`);
    this.terminationTime = this.format.write(time);
  }

  clear(): void {
    this.terminationTime = undefined;
  }
}

export function textAnswer(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}
