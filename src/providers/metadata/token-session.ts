import { MetadataError, MetadataRequestError, errorMessage } from '../../lib/errors.js';
import { METADATA_BACKOFF, backoffDelay } from '../../lib/backoff.js';
import { sleepUntil, type Clock } from '../../lib/clock.js';
import { showValue } from '../../lib/format.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import type { MetadataClient, MetadataResponse } from './client.js';
import type { MetadataRead } from '../types.js';

/** Both clouds with session tokens (AWS IMDSv2, Alibaba hardened mode) use these paths. */
export const TOKEN_PATH = '/latest/api/token';
export const META_DATA_PATH = '/latest/meta-data/';
/** Refresh a token once this share of its lifetime has passed, well before it expires. */
const TOKEN_REFRESH_AT = 0.8;

/** How one cloud's metadata service hands out and checks session tokens. */
export interface TokenProtocol {
  /** What messages call the token: `IMDSv2 token`, `hardened-mode token`. */
  name: string;
  /** The token PUT's header with the lifetime asked for, in seconds. */
  ttlHeader: string;
  /** The header that carries the token on every GET. */
  tokenHeader: string;
  /** GET statuses that mean "no valid token": such a GET gets a fresh token and one retry. */
  refusedStatuses: readonly number[];
  /** The message for a GET refused even so; `withToken` tells whether it carried one. */
  refusal(path: string, status: number, withToken: boolean): string;
  /** For a token PUT that times out: a hint in its message and a warning logged once. */
  timeoutAdvice?: { hint: string; warning: string };
  /** Logged when plain GETs stand in for a failing token PUT, and when a token is had again. */
  fallbackLog?: { started: string; ended: string };
}

/**
 * When GETs go without a token. never: a failed token PUT fails the read. token-fails: while
 * no token can be had (the PUT is retried in the background). unoffered: while the service
 * answers the PUT with 403 or 404 (it offers no tokens), until a plain GET is refused.
 * always: no token is ever asked for.
 */
export type PlainGets = 'never' | 'token-fails' | 'unoffered' | 'always';

export interface TokenSessionOptions {
  client: MetadataClient;
  /** Where token messages go; without one they go to the log of the watch that uses the session. */
  log?: Logger;
  clock: Clock;
  protocol: TokenProtocol;
  plainGets: PlainGets;
  requestTimeoutMs: number;
  tokenTtlSeconds: number;
  tokenTimeoutMs: number;
}

type OnRead = (read: MetadataRead) => void;

/**
 * Metadata access with a session token: one token shared by every source, reused until
 * 80 % of its TTL, renewed on a refused GET (one retry). When the token cannot be had it
 * backs off (reads meanwhile fail at once with the same error, which says when the next
 * try may go, so the poll loops wait for exactly that) and, per `plainGets`, reads go on
 * without a token.
 */
export class TokenSession {
  private token: { value: string; refreshAt: number } | undefined;
  private fetching: Promise<string | null> | undefined;
  private tokenFailures = 0;
  private retryTokenAt = 0;
  /** The last token failure; it carries (retryReady) when the next token request may go. */
  private lastTokenError: MetadataError | undefined;
  private timeoutWarned = false;
  /** Plain GETs stand in for a token PUT that fails (plainGets token-fails). */
  private fallenBack = false;
  /** False once the service said it offers no tokens (plainGets unoffered). */
  private offered: boolean;
  /** Ends backoff waits on close: their timers would hold the process open. */
  private closing = new AbortController();
  private readonly protocol: TokenProtocol;
  private log: Logger;
  /**
   * Where token requests are reported as reads. One place for all: a token PUT is shared by
   * whichever reads need it (a source's poll, the instance facts), and is counted once
   * whoever set it off.
   */
  private reportTo: OnRead | undefined;

  constructor(private readonly options: TokenSessionOptions) {
    this.protocol = options.protocol;
    this.log = options.log ?? silentLogger();
    this.offered = options.plainGets !== 'always';
  }

  /** The watch using this session: token requests are reported to it, and logged to its log unless the session has its own. */
  attach(watch: { log: Logger; onRead?: OnRead }): void {
    if (!this.options.log) this.log = watch.log;
    this.reportTo = watch.onRead;
  }

  /**
   * GETs `/latest/meta-data/<path>`: the body on 200, null on 404 (nothing here).
   * Throws MetadataRequestError / MetadataError for everything else.
   */
  async get(path: string, signal: AbortSignal): Promise<string | null> {
    const refused = (response: MetadataResponse) => this.protocol.refusedStatuses.includes(response.status);
    let token = await this.currentToken();
    let response = await this.send(path, token, signal);
    if (refused(response) && this.options.plainGets !== 'always') {
      // An expired or revoked token, or tokens enforced since plain GETs were chosen.
      const hadToken = token !== null;
      if (this.token?.value === token) this.token = undefined;
      this.offered = true;
      token = await this.currentToken();
      if (token !== null || hadToken) response = await this.send(path, token, signal);
    }
    if (response.status === 200) return response.body;
    if (response.status === 404) return null;
    if (refused(response)) throw new MetadataError('ERR_METADATA_HTTP', this.protocol.refusal(path, response.status, token !== null), response.status);
    throw new MetadataError('ERR_METADATA_HTTP', `${path}: HTTP ${response.status}`, response.status);
  }

  /** Ends a token backoff under way; the next read asks for a token at once. */
  close(): void {
    this.closing.abort();
    this.closing = new AbortController();
    this.retryTokenAt = 0;
  }

  private send(path: string, token: string | null, signal: AbortSignal): Promise<MetadataResponse> {
    return this.options.client.request({
      path: META_DATA_PATH + path,
      headers: token === null ? {} : { [this.protocol.tokenHeader]: token },
      timeoutMs: this.options.requestTimeoutMs,
      signal,
    });
  }

  /** A valid token, or null to go without (as `plainGets` allows). Concurrent callers share one PUT. */
  private currentToken(): Promise<string | null> {
    if (!this.offered) return Promise.resolve(null);
    const now = this.options.clock.now();
    if (this.token && now < this.token.refreshAt) return Promise.resolve(this.token.value);
    if (now < this.retryTokenAt) return this.fallenBack ? Promise.resolve(null) : Promise.reject(this.lastTokenError);
    this.fetching ??= this.fetchToken().finally(() => (this.fetching = undefined));
    // Fallen back, reads go on without a token meanwhile (fetchToken resolves null rather than throwing then).
    return this.fallenBack ? Promise.resolve(null) : this.fetching;
  }

  /** Never passed a reader's signal: the PUT is shared, and one reader stopping must not end it for all. */
  private async fetchToken(): Promise<string | null> {
    const started = performance.now();
    const report = (read: Omit<MetadataRead, 'source' | 'ms'>) => this.reportTo?.({ source: 'token', ms: performance.now() - started, ...read });
    const { name } = this.protocol;
    const ttl = this.options.tokenTtlSeconds;
    try {
      const response = await this.options.client.request({
        method: 'PUT',
        path: TOKEN_PATH,
        headers: { [this.protocol.ttlHeader]: String(ttl) },
        timeoutMs: this.options.tokenTimeoutMs,
      });
      if (this.options.plainGets === 'unoffered' && (response.status === 403 || response.status === 404)) {
        report({ ok: true, status: response.status });
        this.tokenFailures = 0;
        this.offered = false;
        this.log.info({ source: 'token', status: response.status }, `the metadata service offers no ${name} here (HTTP ${response.status}); using plain GETs`);
        return null;
      }
      const value = response.body.trim();
      if (response.status !== 200 || value === '') {
        throw new MetadataError('ERR_METADATA_HTTP', `${name} PUT answered HTTP ${response.status}${value === '' && response.status === 200 ? ' with an empty token' : ''}`, response.status);
      }
      // A proxy's HTML page kept as the token would fail every GET until the token's refresh time.
      if (!isTokenText(value)) {
        throw new MetadataError('ERR_METADATA_BODY', `${name} PUT answered HTTP 200 with a body that is not a token (got ${showValue(value)})`, response.status);
      }
      report({ ok: true, status: 200 });
      this.token = { value, refreshAt: this.options.clock.now() + ttl * 1000 * TOKEN_REFRESH_AT };
      this.tokenFailures = 0;
      this.timeoutWarned = false;
      if (this.fallenBack) {
        this.fallenBack = false;
        if (this.protocol.fallbackLog) this.log.info(this.protocol.fallbackLog.ended);
      }
      return value;
    } catch (error) {
      const failure = this.tokenFailure(error);
      report({ ok: false, error: failure.message, code: failure.code, ...(failure.status ? { status: failure.status } : {}) });
      this.tokenFailures += 1;
      this.retryTokenAt = this.options.clock.now() + backoffDelay(this.tokenFailures, METADATA_BACKOFF);
      // Reads that fail for want of a token wait for this, not for a backoff of their own.
      failure.retryReady = sleepUntil(this.options.clock, this.retryTokenAt, this.closing.signal);
      this.lastTokenError = failure;
      const advice = this.protocol.timeoutAdvice;
      if (failure.code === 'ERR_TOKEN_TIMEOUT' && advice && !this.timeoutWarned) {
        this.timeoutWarned = true;
        this.log.warn({ source: 'token', timeoutMs: this.options.tokenTimeoutMs }, advice.warning);
      }
      if (this.options.plainGets !== 'token-fails') throw failure;
      if (!this.fallenBack) {
        this.fallenBack = true;
        if (this.protocol.fallbackLog) this.log.warn({ source: 'token', err: failure }, this.protocol.fallbackLog.started);
      }
      return null;
    }
  }

  private tokenFailure(error: unknown): MetadataError {
    if (error instanceof MetadataError) return error;
    const { name, timeoutAdvice } = this.protocol;
    if (error instanceof MetadataRequestError && error.kind === 'timeout') {
      const hint = timeoutAdvice ? ` (${timeoutAdvice.hint})` : '';
      return new MetadataError('ERR_TOKEN_TIMEOUT', `${name} PUT got no answer within ${this.options.tokenTimeoutMs} ms${hint}`);
    }
    return new MetadataError(error instanceof MetadataRequestError ? error.code : 'ERR_METADATA_HTTP', `${name} PUT failed: ${errorMessage(error)}`);
  }
}

/** Session tokens are short printable text (base64 on AWS and Alibaba): no spaces, no markup. */
export function isTokenText(value: string): boolean {
  return /^[A-Za-z0-9+/=_.~-]{1,4096}$/.test(value);
}

