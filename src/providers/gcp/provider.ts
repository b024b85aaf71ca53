import { MetadataError } from '../../lib/errors.js';
import { jitteredInterval } from '../../lib/backoff.js';
import { REAL_CLOCK, type Clock } from '../../lib/clock.js';
import { bootId } from '../../lib/boot-id.js';
import { noticeId, type InstanceFacts } from '../../notice/notice.js';
import { mergeLoops, type SourceLoop } from '../metadata/merge-loops.js';
import { FactsCache } from '../metadata/facts-cache.js';
import { MetadataClient } from '../metadata/client.js';
import { pollSource } from '../metadata/poll-loop.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';
import { SourceReport } from '../metadata/source-report.js';
import { maintenanceKey, preemptedKey, type Finding, type GcpValue, type WatchedKey } from './keys.js';
import { upcomingMaintenanceKey } from './upcoming-maintenance.js';

export const GCP_METADATA_URL = 'http://169.254.169.254';
const BASE_PATH = '/computeMetadata/v1/';
const FLAVOR_HEADERS = { 'Metadata-Flavor': 'Google' };
/** The metadata server answers 503 briefly during maintenance: retry soon, not with backoff. */
const UNAVAILABLE_RETRY_MS = 1_000;
/** A hanging GET's client timeout is its timeout_sec plus this much. */
const HANG_SLACK_MS = 10_000;
/**
 * A hanging GET answered with nothing new sooner than this share of its timeout_sec did not
 * hang (a proxy, a server that ignores wait_for_change): the next read waits a poll interval.
 */
const EARLY_RETURN_SHARE = 0.5;

/**
 * GCE metadata server: reads `instance/preempted`, `instance/maintenance-event` and
 * `instance/upcoming-maintenance` once, from the start of the watch (GCE gives the 60 s
 * maintenance-event warning only if the key was read since the last event), then watches
 * each with hanging GETs (`wait_for_change`, `last_etag`, `timeout_sec`), so
 * a change arrives within milliseconds without polling. Hanging GETs that return at once
 * with nothing new are followed by a poll interval's wait, so they never spin.
 */
export class GcpProvider implements Provider {
  readonly name = 'gcp' as const;
  private readonly client: MetadataClient;
  private readonly facts = new FactsCache((signal) => this.fetchFacts(signal));
  private readonly clock: Clock;
  private flavorErrorLogged = false;

  constructor(private readonly options: ProviderOptions) {
    this.client = new MetadataClient(options.baseUrl);
    this.clock = options.clock ?? REAL_CLOCK;
  }

  /**
   * GETs one value; throws MetadataError on a missing flavor header or any status but 200
   * and those `accepts` takes as an answer.
   */
  private async read(pathAndQuery: string, timeoutMs: number, signal: AbortSignal, accepts?: WatchedKey['accepts']): Promise<GcpValue> {
    const response = await this.client.request({ path: BASE_PATH + pathAndQuery, headers: FLAVOR_HEADERS, timeoutMs, signal });
    const path = pathAndQuery.split('?')[0];
    if (response.headers['metadata-flavor'] !== 'Google') {
      throw new MetadataError(
        'ERR_METADATA_HTTP',
        `${path}: the answer (HTTP ${response.status}) lacks the "Metadata-Flavor: Google" header, so ${this.options.baseUrl} is not a GCE metadata server`,
        response.status,
      );
    }
    if (response.status !== 200 && accepts?.(response.status, response.body) !== true) {
      throw new MetadataError('ERR_METADATA_HTTP', `${path}: HTTP ${response.status}`, response.status);
    }
    const etag = response.headers.etag;
    return { status: response.status, value: response.body.trim(), etag: typeof etag === 'string' && etag !== '' ? etag : undefined };
  }

  /** Best effort, fetched once and cached once the instance id is known; never throws. */
  instanceFacts(signal: AbortSignal): Promise<InstanceFacts> {
    return this.facts.get(signal);
  }

  private async fetchFacts(signal: AbortSignal): Promise<InstanceFacts> {
    const get = (path: string) =>
      this.read(path, this.options.requestTimeoutMs, signal).then(
        (answer) => answer.value || undefined,
        () => undefined,
      );
    const [id, name, zonePath, machineType, hostname, preemptible, model] = await Promise.all(
      ['instance/id', 'instance/name', 'instance/zone', 'instance/machine-type', 'instance/hostname', 'instance/scheduling/preemptible', 'instance/scheduling/provisioning-model'].map(get),
    );
    const zone = zonePath?.split('/').pop();
    const facts: InstanceFacts = {
      id,
      name,
      zone,
      // A zone is its region plus a one-letter suffix: us-central1-a → us-central1.
      region: zone?.replace(/-[a-z]$/, ''),
      type: machineType?.split('/').pop(),
      hostname,
      lifecycle: model === 'SPOT' ? 'spot' : preemptible === 'TRUE' ? 'preemptible' : preemptible === 'FALSE' ? 'standard' : undefined,
    };
    for (const key of Object.keys(facts) as (keyof InstanceFacts)[]) if (facts[key] === undefined) delete facts[key];
    return facts;
  }

  watch(context: WatchContext): AsyncIterable<ProviderEvent> {
    return this.run(context);
  }

  private async *run(context: WatchContext): AsyncGenerator<ProviderEvent> {
    void this.instanceFacts(context.signal);
    const boot = this.options.bootId ?? bootId();
    try {
      const keys = [preemptedKey(boot, this.options.gcp.preemptionNoticeDurationMs ?? 0), maintenanceKey(boot), upcomingMaintenanceKey(boot)];
      yield* mergeLoops(context.signal, keys.map((key) => this.watchLoop(key, context)));
    } finally {
      this.client.close();
    }
  }

  /**
   * Polls with hanging GETs: the server holds each read until the value changes (or
   * timeout_sec passes), so the loop needs no interval of its own while it has an ETag and
   * the server really holds the reads.
   */
  private watchLoop(key: WatchedKey, context: WatchContext): SourceLoop {
    const hangSeconds = this.options.gcp.hangTimeoutSeconds;
    return async (emit, signal) => {
      // No ETag yet: the first read answers at once with the current value.
      let etag: string | undefined;
      let hangsReturnEarly = false;
      const events = pollSource<ProviderEvent>(
        {
          report: new SourceReport(key.path, context),
          clock: this.clock,
          // Without an ETag, or with a server that does not hold reads, there is nothing to hang on: poll instead.
          nextIntervalMs: () => (etag === undefined || hangsReturnEarly ? jitteredInterval(this.options.pollIntervalMs) : 0),
          read: async (readSignal) => {
            // A real duration, like every reported one: how long the server held the read.
            const started = performance.now();
            const query = new URLSearchParams(key.query);
            if (etag !== undefined) {
              query.set('wait_for_change', 'true');
              query.set('last_etag', etag);
              query.set('timeout_sec', String(hangSeconds));
            }
            const pathAndQuery = query.size > 0 ? `${key.path}?${query}` : key.path;
            const timeoutMs = etag === undefined ? this.options.requestTimeoutMs : hangSeconds * 1000 + HANG_SLACK_MS;
            const answer = await this.read(pathAndQuery, timeoutMs, readSignal, key.accepts);
            const early = etag !== undefined && answer.etag === etag && performance.now() - started < hangSeconds * 1000 * EARLY_RETURN_SHARE;
            if (early && !hangsReturnEarly) {
              context.log.warn(
                { source: key.path, pollIntervalMs: this.options.pollIntervalMs },
                `metadata ${key.path}: a hanging GET returned at once with nothing new (a proxy or a server that ignores wait_for_change?); polling every poll interval until one hangs again`,
              );
            }
            hangsReturnEarly = early;
            const detectedAt = new Date();
            const findings = key.interpret(answer, detectedAt);
            etag = answer.etag;
            // Facts only decorate a notice: wait for them no longer than every cloud does.
            const facts = findings.some((finding) => finding.type === 'notice') ? await this.facts.forNotice(readSignal) : {};
            return { status: answer.status, found: findings.map((finding) => toEvent(finding, detectedAt, facts)) };
          },
          failed: (error) => {
            this.logFlavorError(error, context);
            return error instanceof MetadataError && error.status === 503 ? jitteredInterval(UNAVAILABLE_RETRY_MS) : undefined;
          },
        },
        signal,
      );
      for await (const event of events) emit(event);
    };
  }

  private logFlavorError(error: unknown, context: WatchContext): void {
    if (this.flavorErrorLogged || !(error instanceof MetadataError) || !error.message.includes('Metadata-Flavor')) return;
    this.flavorErrorLogged = true;
    context.log.error({ baseUrl: this.options.baseUrl }, `${error.message}; check provider and metadataUrl in the config`);
  }
}

function toEvent(finding: Finding, detectedAt: Date, facts: InstanceFacts): ProviderEvent {
  if (finding.type === 'withdrawn') return finding;
  return {
    type: 'notice',
    notice: {
      id: noticeId('gcp', finding.kind, finding.identity),
      provider: 'gcp',
      kind: finding.kind,
      deadline: finding.deadline,
      detectedAt,
      instance: facts,
      raw: finding.raw,
      ...(finding.advisory === true ? { advisory: true } : {}),
      ...(finding.reasons?.length ? { reasons: finding.reasons } : {}),
    },
  };
}

