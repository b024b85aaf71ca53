import { REAL_CLOCK } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import { MetadataClient } from '../metadata/client.js';
import { MetadataError } from '../../lib/errors.js';
import { TokenSession, type PlainGets, type TokenProtocol } from '../metadata/token-session.js';
import type { MetadataRead, ProviderOptions } from '../types.js';

export const HOP_LIMIT_WARNING =
  'IMDSv2 token request (PUT /latest/api/token) timed out. The usual cause is the IMDSv2 hop limit: ' +
  'the token response leaves the metadata service with IP TTL 1, so from a container on a bridge network ' +
  '(or a Kubernetes pod without hostNetwork) it never arrives. Fix: raise the hop limit to 2 ' +
  '(aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2; 3 for Docker-in-Docker) ' +
  'or use host networking. preemptd keeps retrying with backoff.';

/** IMDSv2: a 401 means a missing or expired token; IMDSv1 is a GET without one. */
export const IMDS_TOKENS: TokenProtocol = {
  name: 'IMDSv2 token',
  ttlHeader: 'x-aws-ec2-metadata-token-ttl-seconds',
  tokenHeader: 'x-aws-ec2-metadata-token',
  refusedStatuses: [401],
  refusal: (path, status, withToken) => (withToken ? `${path}: HTTP ${status}` : `${path}: IMDSv1 request refused (HTTP 401): this instance requires IMDSv2 tokens`),
  timeoutAdvice: { hint: 'hop limit?', warning: HOP_LIMIT_WARNING },
  fallbackLog: {
    started: 'no IMDSv2 token; falling back to IMDSv1 (aws.allowImdsV1 is set) and retrying the token in the background',
    ended: 'IMDSv2 token obtained; using IMDSv2 again',
  },
};

/** IMDS access as the provider and `preemptd check` make it; IMDSv1 only where `plainGets` allows. */
export function imdsSession(client: MetadataClient, options: ProviderOptions, log: Logger | undefined, plainGets: PlainGets): TokenSession {
  const { tokenTtlSeconds, tokenTimeoutMs } = options.aws;
  return new TokenSession({ client, log, clock: options.clock ?? REAL_CLOCK, protocol: IMDS_TOKENS, plainGets, requestTimeoutMs: options.requestTimeoutMs, tokenTtlSeconds, tokenTimeoutMs });
}

export interface TokenProbe {
  /** The token PUT as the provider reports it; undefined when it never ran. */
  read: MetadataRead | undefined;
  /** The PUT got no answer within aws.tokenTimeout: the IMDSv2 hop-limit symptom. */
  timedOut: boolean;
}

/**
 * Asks IMDS for one IMDSv2 token through the provider's own session code, so the failure
 * keeps its kind (a timeout is told apart from a refusal). Never falls back to IMDSv1.
 */
export async function probeAwsToken(options: ProviderOptions, log: Logger, signal: AbortSignal): Promise<TokenProbe> {
  const client = new MetadataClient(options.baseUrl);
  const session = imdsSession(client, options, log, 'never');
  let read: MetadataRead | undefined;
  session.attach({
    log,
    onRead: (report) => {
      if (report.source === 'token') read ??= report;
    },
  });
  try {
    await session.get('instance-id', signal);
    return { read, timedOut: false };
  } catch (error) {
    return { read, timedOut: error instanceof MetadataError && error.code === 'ERR_TOKEN_TIMEOUT' };
  } finally {
    session.close();
    client.close();
  }
}
