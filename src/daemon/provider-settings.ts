import type { Config } from '../config/types.js';
import { METADATA_BACKOFF } from '../lib/backoff.js';
import type { SourceName } from '../notice/notice.js';
import { NODE_WATCH_SECONDS } from '../providers/kubernetes/watch-timing.js';
import { defaultMetadataUrl } from '../providers/registry.js';
import type { ProviderOptions } from '../providers/types.js';

/**
 * The longest a live watch loop can go between two completed metadata requests: a poll
 * interval, the longest backoff, a request timeout or a hanging GET (GCP), whichever is
 * longest, plus slack. Past this the loop is stalled (/healthz 503, no watchdog pings).
 */
export function stallThresholdMs(provider: SourceName | null, config: Config): number {
  const waits = [config.pollIntervalMs * 1.1, METADATA_BACKOFF.maxMs, config.requestTimeoutMs, config.aws.tokenTimeoutMs];
  if (provider === 'gcp') waits.push((config.gcp.hangTimeoutSeconds + 10) * 1000);
  if (provider === 'azure') waits.push(config.azure.firstCallTimeoutMs);
  if (provider === 'kubernetes') waits.push((NODE_WATCH_SECONDS + 15) * 1000);
  return Math.max(...waits) + 5000;
}

/** The provider settings a config gives (the daemon and `preemptd check` build providers alike). */
export function providerOptions(config: Config, name: SourceName): ProviderOptions {
  return {
    baseUrl: config.metadataUrl ?? defaultMetadataUrl(name),
    pollIntervalMs: config.pollIntervalMs,
    requestTimeoutMs: config.requestTimeoutMs,
    aws: config.aws,
    gcp: config.gcp,
    azure: config.azure,
    alibaba: config.alibaba,
    kubernetes: config.kubernetes,
  };
}
