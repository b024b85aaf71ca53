import { METADATA_BACKOFF, backoffDelay, type BackoffPolicy } from '../../lib/backoff.js';
import { MetadataError, MetadataRequestError, errorMessage } from '../../lib/errors.js';
import { showValue } from '../../lib/format.js';
import type { Logger } from '../../lib/log.js';
import type { MetadataClient } from './client.js';
import type { MetadataRead } from '../types.js';

const TOKEN_PATH = '/latest/api/token';
const META_DATA_PATH = '/latest/meta-data/';
const TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
/** Refresh a token once this share of its lifetime has passed, well before it expires. */
const TOKEN_REFRESH_AT = 0.8;

export const HOP_LIMIT_WARNING =
  'IMDSv2 token request (PUT /latest/api/token) timed out. The usual cause is the IMDSv2 hop limit: ' +
  'the token response leaves the metadata service with IP TTL 1, so from a container on a bridge network ' +
  '(or a Kubernetes pod without hostNetwork) it never arrives. Fix: raise the hop limit to 2 ' +
  '(aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2; 3 for Docker-in-Docker) ' +
  'or use host networking. preemptd keeps retrying with backoff.';

export interface ImdsSessionOptions {
  client: MetadataClient;
  log: Logger;
  requestTimeoutMs: number;
  tokenTtlSeconds: number;
  tokenTimeoutMs: number;
  allowImdsV1: boolean;
  /** How token requests back off after a failure; METADATA_BACKOFF by default. */
  backoff?: BackoffPolicy;
  now?: () => number;
}

type OnRead = (read: MetadataRead) => void;

/**
 * IMDS access with the IMDSv2 token lifecycle: one token shared by every source, reused
 * until 80 % of its TTL, renewed on a 401 (one retry). When the token cannot be had it
 * backs off (reads meanwhile fail at once with the same error, which says when the next
 * try may go, so the poll loops wait for exactly that), warns once about the hop limit on
 * a timeout, and uses IMDSv1 only if allowed.
 */
export class ImdsSession {
  private token: { value: string; refreshAt: number } | undefined;
  private fetching: Promise<string | null> | undefined;
  private tokenFailures = 0;
  private retryTokenAt = 0;
  /** The last token failure; it carries (retryReady) when the next token request may go. */
  private lastTokenError: MetadataError | undefined;
  private hopLimitWarned = false;
  private usingV1 = false;
  private readonly now: () => number;
  /** Where token warnings go; the provider points it at the watch's log. */
  log: Logger;

  constructor(private readonly options: ImdsSessionOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.log;
  }

  /**
   * GETs `/latest/meta-data/<path>`: the body on 200, null on 404 (IMDS's "nothing here").
   * Throws MetadataRequestError / MetadataError for everything else.
   */
  async get(path: string, signal: AbortSignal, onRead?: OnRead): Promise<string | null> {
    let token = await this.currentToken(onRead);
    let response = await this.send(path, token, signal);
    if (response.status === 401 && token !== null) {
      if (this.token?.value === token) this.token = undefined;
      token = await this.currentToken(onRead);
      response = await this.send(path, token, signal);
    }
    if (response.status === 200) return response.body;
    if (response.status === 404) return null;
    if (response.status === 401 && token === null) {
      throw new MetadataError('ERR_METADATA_HTTP', `${path}: IMDSv1 request refused (HTTP 401): this instance requires IMDSv2 tokens`, 401);
    }
    throw new MetadataError('ERR_METADATA_HTTP', `${path}: HTTP ${response.status}`, response.status);
  }

  private send(path: string, token: string | null, signal: AbortSignal) {
    return this.options.client.request({
      path: META_DATA_PATH + path,
      headers: token === null ? {} : { [TOKEN_HEADER]: token },
      timeoutMs: this.options.requestTimeoutMs,
      signal,
    });
  }

  /** A valid token, or null to go without (IMDSv1, only when allowed). */
  private currentToken(onRead?: OnRead): Promise<string | null> {
    if (this.token && this.now() < this.token.refreshAt) return Promise.resolve(this.token.value);
    if (this.now() < this.retryTokenAt) {
      if (this.usingV1) return Promise.resolve(null);
      return Promise.reject(this.lastTokenError);
    }
    if (this.usingV1) {
      // Try for a token again in the background; polls go on with IMDSv1 meanwhile.
      // (fetchToken resolves null rather than throwing while IMDSv1 is allowed.)
      this.fetching ??= this.fetchToken(onRead).finally(() => (this.fetching = undefined));
      return Promise.resolve(null);
    }
    this.fetching ??= this.fetchToken(onRead).finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async fetchToken(onRead?: OnRead): Promise<string | null> {
    const started = performance.now();
    const ttl = this.options.tokenTtlSeconds;
    try {
      const response = await this.options.client.request({
        method: 'PUT',
        path: TOKEN_PATH,
        headers: { [TOKEN_TTL_HEADER]: String(ttl) },
        timeoutMs: this.options.tokenTimeoutMs,
      });
      const value = response.body.trim();
      if (response.status !== 200 || value === '') {
        throw new MetadataError('ERR_METADATA_HTTP', `IMDSv2 token PUT answered HTTP ${response.status}${value === '' && response.status === 200 ? ' with an empty token' : ''}`, response.status);
      }
      // A proxy's HTML page kept as the token would fail every GET until the token's refresh time.
      if (!isTokenText(value)) {
        throw new MetadataError('ERR_METADATA_BODY', `IMDSv2 token PUT answered HTTP 200 with a body that is not a token (got ${showValue(value)})`, response.status);
      }
      onRead?.({ source: 'token', ok: true, ms: performance.now() - started, status: 200 });
      this.token = { value, refreshAt: this.now() + ttl * 1000 * TOKEN_REFRESH_AT };
      this.tokenFailures = 0;
      this.hopLimitWarned = false;
      if (this.usingV1) {
        this.usingV1 = false;
        this.log.info('IMDSv2 token obtained; using IMDSv2 again');
      }
      return value;
    } catch (error) {
      const failure = tokenFailure(error, this.options.tokenTimeoutMs);
      onRead?.({ source: 'token', ok: false, ms: performance.now() - started, error: failure.message, code: failure.code, ...(failure.status ? { status: failure.status } : {}) });
      this.tokenFailures += 1;
      this.retryTokenAt = this.now() + backoffDelay(this.tokenFailures, this.options.backoff ?? METADATA_BACKOFF);
      // Reads that fail for want of a token wait for this, not for a backoff of their own.
      failure.retryReady = this.tokenRetryAllowed();
      this.lastTokenError = failure;
      if (failure.code === 'ERR_TOKEN_TIMEOUT' && !this.hopLimitWarned) {
        this.hopLimitWarned = true;
        this.log.warn({ source: 'token', timeoutMs: this.options.tokenTimeoutMs }, HOP_LIMIT_WARNING);
      }
      if (!this.options.allowImdsV1) throw failure;
      if (!this.usingV1) {
        this.usingV1 = true;
        this.log.warn({ source: 'token', error: failure.message }, 'no IMDSv2 token; falling back to IMDSv1 (aws.allowImdsV1 is set) and retrying the token in the background');
      }
      return null;
    }
  }

  /**
   * Settles once the token backoff is over (on this session's clock, which tests move by
   * hand), so the next read asks for a token instead of meeting the stored failure.
   */
  private tokenRetryAllowed(): Promise<void> {
    const retryAt = this.retryTokenAt;
    return new Promise((resolve) => {
      const check = () => {
        const left = retryAt - this.now();
        // A timer can fire a little before the clock shows its time: check, and wait the rest.
        if (left > 0) setTimeout(check, left).unref();
        else resolve();
      };
      check();
    });
  }
}

/** Session tokens are short printable text (base64 on AWS and Alibaba): no spaces, no markup. */
export function isTokenText(value: string): boolean {
  return /^[A-Za-z0-9+/=_.~-]{1,4096}$/.test(value);
}

function tokenFailure(error: unknown, timeoutMs: number): MetadataError {
  if (error instanceof MetadataError) return error;
  if (error instanceof MetadataRequestError && error.kind === 'timeout') {
    return new MetadataError('ERR_TOKEN_TIMEOUT', `IMDSv2 token PUT got no answer within ${timeoutMs} ms (hop limit?)`);
  }
  return new MetadataError(error instanceof MetadataRequestError ? error.code : 'ERR_METADATA_HTTP', `IMDSv2 token PUT failed: ${errorMessage(error)}`);
}
