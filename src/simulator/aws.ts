import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PreemptdError } from '../lib/errors.js';
import { cannotShow, type SimulatedCloud, type SimulatedCloudOptions, type TriggerSpec } from './cloud.js';
import { directoryEntries } from './directory.js';

const MAX_TOKEN_TTL_SECONDS = 21_600;
const DEFAULT_LEAD_MS = 120_000;
const LIFECYCLE_ITEM = 'autoscaling/target-lifecycle-state';
/** Trigger actions of a terminate: the spot instance-action ones, and an Auto Scaling termination. */
export const AWS_ACTIONS = ['terminate', 'stop', 'hibernate', 'autoscaling'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** IMDS answers errors with small XHTML pages, not JSON. */
function errorPage(status: number, title: string): string {
  return [
    '<?xml version="1.0" encoding="iso-8859-1"?>',
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"',
    '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">',
    ' <head>',
    `  <title>${status} - ${title}</title>`,
    ' </head>',
    ' <body>',
    `  <h1>${status} - ${title}</h1>`,
    ' </body>',
    '</html>',
    '',
  ].join('\n');
}

/** `2017-09-18T08:22:00Z`: IMDS times carry no milliseconds. */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `21 Jan 2019 09:00:43 GMT`, the form of maintenance event dates. */
export function awsEventDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} GMT`;
}

function noticeTime(spec: TriggerSpec): Date {
  if (spec.time !== undefined) {
    const time = new Date(spec.time);
    if (Number.isNaN(time.getTime())) throw new PreemptdError('ERR_USAGE', `trigger time ${JSON.stringify(spec.time)} is not an ISO time`);
    return time;
  }
  return new Date(Date.now() + (spec.leadMs ?? DEFAULT_LEAD_MS));
}

interface MaintenanceEvent {
  Code: string;
  Description: string;
  EventId: string;
  NotAfter: string;
  NotBefore: string;
  State: string;
}

/**
 * The EC2 instance metadata service as an instance with IMDSv2 required sees it: token
 * PUT with TTL limits, 401 without a valid token, XHTML 404 pages, and the interruption
 * paths (spot/instance-action, spot/termination-time, rebalance, scheduled maintenance).
 */
export class SimulatedAws implements SimulatedCloud {
  readonly provider = 'aws' as const;
  private readonly tokens = new Map<string, number>();
  private readonly values = new Map<string, string>();
  private maintenance: MaintenanceEvent[] = [];
  /** `required` (default, as on new instances): GETs need a token. `optional` allows IMDSv1. */
  private readonly tokenMode: NonNullable<SimulatedCloudOptions['metadataTokens']>;

  constructor(options: SimulatedCloudOptions) {
    this.tokenMode = options.metadataTokens ?? 'required';
    const facts: Record<string, string> = {
      'ami-id': 'ami-0abcdef1234567890',
      'instance-id': options.instanceId ?? 'i-0123456789abcdef0',
      'instance-type': 'g5.xlarge',
      'instance-life-cycle': 'spot',
      'local-hostname': 'ip-10-0-1-23.ec2.internal',
      'local-ipv4': '10.0.1.23',
      'placement/availability-zone': 'us-east-1a',
      'placement/region': 'us-east-1',
    };
    // In an Auto Scaling group, as ec2-metadata-mock shows it; `--action autoscaling` terminates it.
    if (options.inAutoScalingGroup !== false) facts[LIFECYCLE_ITEM] = 'InService';
    for (const [path, value] of Object.entries(facts)) this.values.set(path, value);
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    // IMDS serves `//latest/...` as `/latest/...`; AWS's own SDK asks for the double slash.
    const path = (request.url ?? '/').split('?')[0]!.replace(/^\/+/, '/');
    response.setHeader('Server', 'EC2ws');
    if (request.method === 'PUT') {
      this.putToken(path, request, response);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      this.send(response, 405, errorPage(405, 'Method Not Allowed'), 'text/html');
      return;
    }
    const token = request.headers['x-aws-ec2-metadata-token'];
    const expiresAt = typeof token === 'string' ? this.tokens.get(token) : undefined;
    const tokenValid = expiresAt !== undefined && expiresAt > Date.now();
    if (expiresAt !== undefined && !tokenValid) this.tokens.delete(token as string);
    // An invalid token is refused even where tokens are optional; no token at all is IMDSv1.
    if (token === undefined ? this.tokenMode === 'required' : !tokenValid) {
      this.send(response, 401, errorPage(401, 'Unauthorized'), 'text/html');
      return;
    }
    const body = this.read(path);
    if (body === undefined) this.send(response, 404, errorPage(404, 'Not Found'), 'text/html');
    else this.send(response, 200, body, 'text/plain');
  }

  private putToken(path: string, request: IncomingMessage, response: ServerResponse): void {
    // Versioned token paths and proxied requests are refused, as IMDS does.
    if (this.tokenMode === 'unavailable') {
      this.send(response, 404, errorPage(404, 'Not Found'), 'text/html');
      return;
    }
    if (path !== '/latest/api/token' || request.headers['x-forwarded-for'] !== undefined) {
      this.send(response, 403, errorPage(403, 'Forbidden'), 'text/html');
      return;
    }
    const ttlHeader = request.headers['x-aws-ec2-metadata-token-ttl-seconds'];
    const ttl = typeof ttlHeader === 'string' && /^\d+$/.test(ttlHeader.trim()) ? Number(ttlHeader) : NaN;
    if (!(ttl >= 1 && ttl <= MAX_TOKEN_TTL_SECONDS)) {
      this.send(response, 400, errorPage(400, 'Bad Request'), 'text/html');
      return;
    }
    const token = randomBytes(42).toString('base64');
    this.tokens.set(token, Date.now() + ttl * 1000);
    response.setHeader('X-aws-ec2-metadata-token-ttl-seconds', String(ttl));
    this.send(response, 200, token, 'text/plain');
  }

  private read(path: string): string | undefined {
    if (path === '/latest/' || path === '/latest') return 'dynamic\nmeta-data\nuser-data';
    if (path !== '/latest/meta-data' && !path.startsWith('/latest/meta-data/')) return undefined;
    const key = path.slice('/latest/meta-data/'.length);
    if (key === 'events/maintenance/scheduled') return this.maintenance.length > 0 ? JSON.stringify(this.maintenance, null, 2) : undefined;
    const value = this.values.get(key);
    if (value !== undefined) return value;
    return this.listing(key);
  }

  /** A directory path lists its entries, one per line, sub-directories with a slash. */
  private listing(key: string): string | undefined {
    const keys = [...this.values.keys(), ...(this.maintenance.length > 0 ? ['events/maintenance/scheduled'] : [])];
    return directoryEntries(keys, key)?.join('\n');
  }

  private send(response: ServerResponse, status: number, body: string, type: string): void {
    response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    response.end(body);
  }

  trigger(spec: TriggerSpec): void {
    switch (spec.kind) {
      case 'terminate':
      case 'stop':
      case 'hibernate': {
        const action = spec.action ?? spec.kind;
        if (!(AWS_ACTIONS as readonly string[]).includes(action)) {
          throw new PreemptdError('ERR_USAGE', `AWS action ${JSON.stringify(action)} is not one of ${AWS_ACTIONS.join(', ')}`);
        }
        if (action === 'autoscaling') {
          this.values.set(LIFECYCLE_ITEM, 'Terminated');
          return;
        }
        // A hibernation starts as the notice appears: its time is now unless one is given.
        const time = isoSeconds(action === 'hibernate' && spec.time === undefined ? new Date() : noticeTime(spec));
        this.values.set('spot/instance-action', JSON.stringify({ action, time }));
        this.values.set('spot/termination-time', time);
        return;
      }
      case 'rebalance':
        this.values.set('events/recommendations/rebalance', JSON.stringify({ noticeTime: isoSeconds(new Date()) }));
        return;
      case 'maintenance': {
        const notBefore = noticeTime(spec);
        const code = spec.action ?? 'system-reboot';
        this.maintenance = [
          {
            Code: code,
            Description: `scheduled ${code.replace(/-/g, ' ')}`,
            EventId: `instance-event-${randomBytes(9).toString('hex').slice(0, 17)}`,
            NotAfter: awsEventDate(new Date(notBefore.getTime() + 2 * 3_600_000)),
            NotBefore: awsEventDate(notBefore),
            State: 'active',
          },
        ];
        return;
      }
      default:
        throw cannotShow(this.provider, spec.kind);
    }
  }

  clear(): void {
    this.values.delete('spot/instance-action');
    this.values.delete('spot/termination-time');
    this.values.delete('events/recommendations/rebalance');
    this.values.set(LIFECYCLE_ITEM, 'InService');
    // AWS keeps a cancelled event listed with its state until it moves to history.
    for (const event of this.maintenance) event.State = 'canceled';
  }

  close(): void {}
}
