import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimulatedCloud, SimulatedCloudOptions, TriggerSpec } from './cloud.js';
import { META_DATA_PREFIX, TerminationTimeTree, textAnswer as text } from './termination-time-tree.js';

const TOKEN_PATH = '/latest/api/token';
const TTL_HEADER = 'x-aliyun-ecs-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aliyun-ecs-metadata-token';
const MAX_TTL_SECONDS = 21_600;
/** Alibaba reclaims a spot instance about 5 minutes after the notice appears; it writes whole seconds: 2015-01-05T18:02:00Z. */
const TERMINATION_TIME = { item: 'instance/spot/termination-time', defaultLeadMs: 5 * 60_000, write: (time: Date) => time.toISOString().replace(/\.\d{3}Z$/, 'Z') };

/**
 * Alibaba Cloud ECS metadata service at 100.100.100.200: hardened-mode tokens (PUT
 * /latest/api/token), plain-text items under /latest/meta-data/, and the spot
 * termination-time item that answers 404 until a reclaim is scheduled.
 */
export class SimulatedAlibaba implements SimulatedCloud {
  readonly provider = 'alibaba' as const;
  readonly tokenMode: NonNullable<SimulatedCloudOptions['metadataTokens']>;
  /** Token PUTs answered with a token (tests check refresh and reuse). */
  tokensIssued = 0;
  private readonly tokens = new Map<string, number>();
  private readonly tree: TerminationTimeTree;

  constructor(options: SimulatedCloudOptions) {
    this.tokenMode = options.metadataTokens ?? 'optional';
    this.tree = new TerminationTimeTree(this.provider, {
      'instance-id': options.instanceId ?? 'i-bp1simulated0000000',
      'instance/instance-type': 'ecs.gn7i-c8g1.2xlarge',
      'zone-id': 'cn-hangzhou-h',
      'region-id': 'cn-hangzhou',
      hostname: options.instanceName ?? 'iZbp1simulatedZ',
    }, TERMINATION_TIME);
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0]!;
    if (path === TOKEN_PATH) return this.issueToken(request, response);
    if (!path.startsWith(META_DATA_PREFIX)) return text(response, 404, 'Not Found');
    if (request.method !== 'GET') return text(response, 405, 'Method Not Allowed');
    const token = request.headers[TOKEN_HEADER];
    if (typeof token === 'string' ? !this.validToken(token) : this.tokenMode === 'required') return text(response, 401, 'Unauthorized');

    this.tree.respond(path, response);
  }

  trigger(spec: TriggerSpec): void {
    this.tree.trigger(spec);
  }

  clear(): void {
    this.tree.clear();
  }

  close(): void {}

  private issueToken(request: IncomingMessage, response: ServerResponse): void {
    if (request.method !== 'PUT') return text(response, 405, 'Method Not Allowed');
    if (this.tokenMode === 'unavailable') return text(response, 404, 'Not Found');
    if (request.headers['x-forwarded-for'] !== undefined) return text(response, 403, 'Forbidden');
    const ttl = Number(request.headers[TTL_HEADER]);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) return text(response, 400, 'Bad Request');
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, Date.now() + ttl * 1000);
    this.tokensIssued += 1;
    text(response, 200, token);
  }

  private validToken(token: string): boolean {
    const expires = this.tokens.get(token);
    return expires !== undefined && expires > Date.now();
  }
}
