import { METADATA_BACKOFF, jitteredInterval, type BackoffPolicy } from '../../lib/backoff.js';
import { MetadataError, MetadataRequestError, errorMessage } from '../../lib/errors.js';
import { showValue } from '../../lib/format.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { noticeId, type InstanceFacts, type Notice } from '../../notice/notice.js';
import { isTokenText } from '../metadata/token-session.js';
import { FactsCache, readFactItems, type FactItems } from '../metadata/facts-cache.js';
import { parseIsoTime } from '../aws/payloads.js';
import { MetadataClient, type MetadataResponse } from '../metadata/client.js';
import { pollSource } from '../metadata/poll-loop.js';
import type { MetadataRead, Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';
import { SourceReport } from '../metadata/source-report.js';

export const ALIBABA_METADATA_URL = 'http://100.100.100.200';
export const ALIBABA_DEFAULTS = { hardened: true, tokenTtlSeconds: 21_600 } as const;

const TOKEN_PATH = '/latest/api/token';
const META_DATA_PATH = '/latest/meta-data/';
const TERMINATION_TIME = 'instance/spot/termination-time';
const TOKEN_TTL_HEADER = 'x-aliyun-ecs-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aliyun-ecs-metadata-token';
/** Renew a token once this share of its lifetime has passed, well before it expires. */
const TOKEN_REFRESH_AT = 0.8;

const FACT_ITEMS: FactItems = [
  ['id', 'instance-id'],
  ['type', 'instance/instance-type'],
  ['zone', 'zone-id'],
  ['region', 'region-id'],
];

type OnRead = (read: MetadataRead) => void;

export interface AlibabaSessionOptions {
  client: MetadataClient;
  log: Logger;
  requestTimeoutMs: number;
  hardened: boolean;
  tokenTtlSeconds: number;
  now?: () => number;
}

/**
 * ECS metadata access. In hardened mode every GET carries a token (PUT /latest/api/token),
 * reused until 80 % of its TTL and renewed once on a 401/403. When the token PUT answers
 * 403 or 404 the service does not offer hardened mode here: plain GETs are used, until a
 * plain GET is refused (hardened mode enforced since), which brings the token back.
 * A failed token PUT has no backoff of its own: the read fails, the poll loop backs off,
 * and its next read asks again (one reader polls here, so there is nothing to share).
 */
export class AlibabaSession {
  log: Logger;
  private token: { value: string; refreshAt: number } | undefined;
  private fetching: Promise<string | undefined> | undefined;
  private tokensOffered = true;
  private readonly now: () => number;

  constructor(private readonly options: AlibabaSessionOptions) {
    this.log = options.log;
    this.now = options.now ?? Date.now;
  }

  /** GETs `/latest/meta-data/<path>`: the body on 200, null on 404. Throws for anything else. */
  async get(path: string, signal: AbortSignal, onRead?: OnRead): Promise<string | null> {
    let token = this.options.hardened && this.tokensOffered ? await this.currentToken(signal, onRead) : undefined;
    let response = await this.send(path, token, signal);
    if (refused(response) && this.options.hardened) {
      // An expired or revoked token, or hardened mode enforced after we fell back to plain GETs.
      const hadToken = token !== undefined;
      if (this.token?.value === token) this.token = undefined;
      this.tokensOffered = true;
      token = await this.currentToken(signal, onRead);
      if (token !== undefined || hadToken) response = await this.send(path, token, signal);
    }
    if (response.status === 200) return response.body;
    if (response.status === 404) return null;
    if (refused(response)) {
      const why = this.options.hardened
        ? 'refused even with a fresh hardened-mode token'
        : 'refused: this instance requires hardened-mode tokens; set alibaba.hardened: true';
      throw new MetadataError('ERR_METADATA_HTTP', `${path}: HTTP ${response.status} (${why})`, response.status);
    }
    throw new MetadataError('ERR_METADATA_HTTP', `${path}: HTTP ${response.status}`, response.status);
  }

  private send(path: string, token: string | undefined, signal: AbortSignal): Promise<MetadataResponse> {
    return this.options.client.request({
      path: META_DATA_PATH + path,
      headers: token === undefined ? {} : { [TOKEN_HEADER]: token },
      timeoutMs: this.options.requestTimeoutMs,
      signal,
    });
  }

  /** A valid token, or undefined when the service offers none. Concurrent callers share one PUT. */
  private currentToken(signal: AbortSignal, onRead?: OnRead): Promise<string | undefined> {
    if (this.token && this.now() < this.token.refreshAt) return Promise.resolve(this.token.value);
    this.fetching ??= this.fetchToken(signal, onRead).finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async fetchToken(signal: AbortSignal, onRead?: OnRead): Promise<string | undefined> {
    const started = performance.now();
    const ttl = this.options.tokenTtlSeconds;
    const report = (ok: boolean, status?: number, failure?: MetadataError) =>
      onRead?.({ source: 'token', ok, ms: performance.now() - started, ...(status === undefined ? {} : { status }), ...(failure ? { error: failure.message, code: failure.code } : {}) });
    let response: MetadataResponse;
    try {
      response = await this.options.client.request({
        method: 'PUT',
        path: TOKEN_PATH,
        headers: { [TOKEN_TTL_HEADER]: String(ttl) },
        timeoutMs: this.options.requestTimeoutMs,
        signal,
      });
    } catch (error) {
      const failure =
        error instanceof MetadataRequestError && error.kind === 'timeout'
          ? new MetadataError('ERR_TOKEN_TIMEOUT', `hardened-mode token PUT got no answer within ${this.options.requestTimeoutMs} ms`)
          : new MetadataError(error instanceof MetadataRequestError ? error.code : 'ERR_METADATA_HTTP', `hardened-mode token PUT failed: ${errorMessage(error)}`);
      report(false, undefined, failure);
      throw failure;
    }
    const value = response.body.trim();
    if (response.status === 200 && isTokenText(value)) {
      report(true, 200);
      this.token = { value, refreshAt: this.now() + ttl * 1000 * TOKEN_REFRESH_AT };
      return value;
    }
    if (response.status === 403 || response.status === 404) {
      report(true, response.status);
      this.tokensOffered = false;
      this.log.info({ source: 'token', status: response.status }, `the metadata service offers no hardened-mode token here (HTTP ${response.status}); using plain GETs`);
      return undefined;
    }
    const failure = new MetadataError(
      'ERR_METADATA_HTTP',
      `hardened-mode token PUT answered HTTP ${response.status}${response.status === 200 ? ` with a body that is not a token (got ${showValue(value)})` : ''}`,
      response.status,
    );
    report(false, response.status, failure);
    throw failure;
  }
}

function refused(response: MetadataResponse): boolean {
  return response.status === 401 || response.status === 403;
}

/**
 * Detection probe: `zone-id` is an Alibaba item (AWS has placement/availability-zone). A
 * token is asked for first, so an instance that enforces hardened mode is recognised too.
 */
export async function probeAlibaba(client: MetadataClient, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  const token = await client.request({ method: 'PUT', path: TOKEN_PATH, headers: { [TOKEN_TTL_HEADER]: '60' }, timeoutMs, signal });
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
 * its deadline, yielded once per process.
 */
export class AlibabaProvider implements Provider {
  readonly name = 'alibaba' as const;
  private readonly client: MetadataClient;
  private readonly session: AlibabaSession;
  private readonly facts = new FactsCache((signal, learn) => readFactItems(FACT_ITEMS, (path) => this.session.get(path, signal, this.reportRead), learn));
  private readonly hasOwnLog: boolean;
  /** The watch's `onRead`: a token request made while reading facts is reported there too. */
  private reportRead: OnRead | undefined;

  /**
   * `log` receives token messages; without it they go to the log of the first watch.
   * `backoff` (how failed reads back off) is for tests; METADATA_BACKOFF otherwise.
   */
  constructor(
    private readonly options: ProviderOptions,
    log?: Logger,
    private readonly backoff: BackoffPolicy = METADATA_BACKOFF,
  ) {
    this.client = new MetadataClient(options.baseUrl);
    this.hasOwnLog = log !== undefined;
    const { hardened, tokenTtlSeconds } = options.alibaba ?? ALIBABA_DEFAULTS;
    this.session = new AlibabaSession({ client: this.client, log: log ?? silentLogger(), requestTimeoutMs: options.requestTimeoutMs, hardened, tokenTtlSeconds });
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
    if (!this.hasOwnLog) this.session.log = context.log;
    this.reportRead = context.onRead;
    const seen = new Set<string>();
    const warned = new Set<string>();
    // Fetched now so that a notice found later carries the facts without waiting for them.
    void this.instanceFacts(signal);
    try {
      yield* pollSource<ProviderEvent>(
        {
          report: new SourceReport(TERMINATION_TIME, context),
          nextIntervalMs: () => jitteredInterval(this.options.pollIntervalMs),
          backoff: this.backoff,
          read: async (readSignal) => {
            const body = await this.session.get(TERMINATION_TIME, readSignal, context.onRead);
            const status = body === null ? 404 : 200;
            const termination = parseTerminationTime(body);
            if (termination && termination.time === undefined && !warned.has(termination.text)) {
              warned.add(termination.text);
              context.log.warn({ source: TERMINATION_TIME, value: termination.text }, `${TERMINATION_TIME} holds ${showValue(termination.text)}, not a time such as 2015-01-05T18:02:00Z; treating it as no notice`);
            }
            if (!termination?.time || seen.has(termination.text)) return { status, found: [] };
            seen.add(termination.text);
            return { status, found: [{ type: 'notice', notice: await this.notice(termination.text, termination.time, readSignal) }] };
          },
        },
        signal,
      );
    } finally {
      this.client.close();
    }
  }

  private async notice(text: string, time: Date, signal: AbortSignal): Promise<Notice> {
    return {
      id: noticeId('alibaba', 'terminate', text),
      provider: 'alibaba',
      kind: 'terminate',
      deadline: time,
      detectedAt: new Date(),
      instance: await this.facts.forNotice(signal),
      raw: text,
    };
  }
}
