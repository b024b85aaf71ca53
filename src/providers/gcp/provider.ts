import { MetadataError } from '../../lib/errors.js';
import { jitteredInterval } from '../../lib/backoff.js';
import { REAL_CLOCK, type Clock } from '../../lib/clock.js';
import { showValue } from '../../lib/format.js';
import { bootId } from '../../lib/boot-id.js';
import { noticeId, type InstanceFacts, type NoticeKind } from '../../notice/notice.js';
import { mergeLoops, type SourceLoop } from '../metadata/merge-loops.js';
import { FactsCache } from '../metadata/facts-cache.js';
import { MetadataClient } from '../metadata/client.js';
import { pollSource } from '../metadata/poll-loop.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';
import { SourceReport } from '../metadata/source-report.js';

export const GCP_METADATA_URL = 'http://169.254.169.254';
const BASE_PATH = '/computeMetadata/v1/';
const FLAVOR_HEADERS = { 'Metadata-Flavor': 'Google' };
/** Spot / preemptible VMs are powered off 30 s after `preempted` turns TRUE. */
const PREEMPT_BUDGET_MS = 30_000;
/** `maintenance-event` changes about 60 s before the host maintenance starts. */
const MAINTENANCE_BUDGET_MS = 60_000;
/** The metadata server answers 503 briefly during maintenance: retry soon, not with backoff. */
const UNAVAILABLE_RETRY_MS = 1_000;
/** A hanging GET's client timeout is its timeout_sec plus this much. */
const HANG_SLACK_MS = 10_000;
/**
 * A hanging GET answered with nothing new sooner than this share of its timeout_sec did not
 * hang (a proxy, a server that ignores wait_for_change): the next read waits a poll interval.
 */
const EARLY_RETURN_SHARE = 0.5;

interface GcpValue {
  value: string;
  etag: string | undefined;
}

/** What a watched key's new value means, before instance facts are attached. */
type Finding =
  | { type: 'notice'; kind: NoticeKind; identity: string; deadline: Date; raw: unknown; advisory?: boolean }
  | { type: 'withdrawn'; noticeId: string; reason: string };

interface WatchedKey {
  path: string;
  /** Throws MetadataError on a value it does not understand. */
  interpret(value: string, etag: string | undefined, now: Date): Finding[];
}

/**
 * GCE metadata server: reads `instance/preempted` and `instance/maintenance-event` once,
 * then watches each with hanging GETs (`wait_for_change`, `last_etag`, `timeout_sec`), so
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

  /** GETs one value; throws MetadataError on any status but 200 or a missing flavor header. */
  private async read(pathAndQuery: string, timeoutMs: number, signal: AbortSignal): Promise<GcpValue> {
    const response = await this.client.request({ path: BASE_PATH + pathAndQuery, headers: FLAVOR_HEADERS, timeoutMs, signal });
    const path = pathAndQuery.split('?')[0];
    if (response.headers['metadata-flavor'] !== 'Google') {
      throw new MetadataError(
        'ERR_METADATA_HTTP',
        `${path}: the answer (HTTP ${response.status}) lacks the "Metadata-Flavor: Google" header, so ${this.options.baseUrl} is not a GCE metadata server`,
        response.status,
      );
    }
    if (response.status !== 200) throw new MetadataError('ERR_METADATA_HTTP', `${path}: HTTP ${response.status}`, response.status);
    const etag = response.headers.etag;
    return { value: response.body.trim(), etag: typeof etag === 'string' && etag !== '' ? etag : undefined };
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
      yield* mergeLoops(context.signal, [preemptedKey(boot), maintenanceKey(boot)].map((key) => this.watchLoop(key, context)));
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
            const answer =
              etag === undefined
                ? await this.read(key.path, this.options.requestTimeoutMs, readSignal)
                : await this.read(
                    `${key.path}?wait_for_change=true&last_etag=${encodeURIComponent(etag)}&timeout_sec=${hangSeconds}`,
                    hangSeconds * 1000 + HANG_SLACK_MS,
                    readSignal,
                  );
            const early = etag !== undefined && answer.etag === etag && performance.now() - started < hangSeconds * 1000 * EARLY_RETURN_SHARE;
            if (early && !hangsReturnEarly) {
              context.log.warn(
                { source: key.path, pollIntervalMs: this.options.pollIntervalMs },
                `metadata ${key.path}: a hanging GET returned at once with nothing new (a proxy or a server that ignores wait_for_change?); polling every poll interval until one hangs again`,
              );
            }
            hangsReturnEarly = early;
            const detectedAt = new Date();
            const findings = key.interpret(answer.value, answer.etag, detectedAt);
            etag = answer.etag;
            // Facts only decorate a notice: wait for them no longer than every cloud does.
            const facts = findings.some((finding) => finding.type === 'notice') ? await this.facts.forNotice(readSignal) : {};
            return { status: 200, found: findings.map((finding) => toEvent(finding, detectedAt, facts)) };
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
    },
  };
}

/** `instance/preempted`: TRUE or FALSE; throws ERR_METADATA_BODY on anything else. */
export function parsePreempted(value: string): boolean {
  if (value === 'TRUE' || value === 'FALSE') return value === 'TRUE';
  throw new MetadataError('ERR_METADATA_BODY', `instance/preempted: expected TRUE or FALSE, got ${showValue(value)}`, 200);
}

/**
 * NONE or an `..._ON_HOST_MAINTENANCE` value (MIGRATE, TERMINATE, SHUTDOWN on old docs).
 * A value merely in capitals is not enough: a body cut short (`NO`, `MIGRATE_ON_HOS`) must
 * not become a maintenance notice.
 */
const MAINTENANCE_VALUE = /^(?:NONE|[A-Z][A-Z_]*_ON_HOST_MAINTENANCE)$/;

/** `instance/maintenance-event`: the value; throws ERR_METADATA_BODY on anything else. */
export function parseMaintenanceEvent(value: string): string {
  if (MAINTENANCE_VALUE.test(value)) return value;
  throw new MetadataError('ERR_METADATA_BODY', `instance/maintenance-event: expected NONE or a value such as MIGRATE_ON_HOST_MAINTENANCE, got ${showValue(value)}`, 200);
}

/** A VM is preempted once per boot: the boot and the key are the whole identity. */
function preemptedKey(boot: string): WatchedKey {
  let shown = false;
  return {
    path: 'instance/preempted',
    interpret(value, etag, now) {
      if (!parsePreempted(value) || shown) return [];
      shown = true;
      return [
        {
          type: 'notice',
          kind: 'preempt',
          identity: `${boot}\0preempted`,
          deadline: new Date(now.getTime() + PREEMPT_BUDGET_MS),
          raw: { path: 'instance/preempted', value, etag },
        },
      ];
    },
  };
}

/** Only a live migration leaves the VM running, so only it can come again within one boot. */
const RECURRING_MAINTENANCE = 'MIGRATE_ON_HOST_MAINTENANCE';

/**
 * `instance/maintenance-event`. GCE gives no event id, so an event is an episode: a value
 * shown again within MAINTENANCE_BUDGET_MS of going back to NONE is the same event (a flap),
 * with the same id and deadline, never a new plan. A value that ends the boot (terminate)
 * is identified by the boot and the value; a live migration, which may come again in the
 * same boot, also by when this process first saw its episode.
 */
function maintenanceKey(boot: string): WatchedKey {
  let episode: { value: string; identity: string; deadline: Date; endedAt: number | undefined } | undefined;
  return {
    path: 'instance/maintenance-event',
    interpret(value, etag, now) {
      const raw = { path: 'instance/maintenance-event', value, etag };
      if (parseMaintenanceEvent(value) === 'NONE') {
        if (!episode || episode.endedAt !== undefined) return [];
        episode.endedAt = now.getTime();
        return [{ type: 'withdrawn', noticeId: noticeId('gcp', 'maintenance', episode.identity), reason: `GCE maintenance-event went from ${episode.value} back to NONE` }];
      }
      const flap = episode?.value === value && (episode.endedAt === undefined || now.getTime() - episode.endedAt < MAINTENANCE_BUDGET_MS);
      if (episode && flap) {
        if (episode.endedAt === undefined) return [];
        episode.endedAt = undefined;
      } else {
        const identity = value === RECURRING_MAINTENANCE ? `${boot}\0${value}\0${now.toISOString()}` : `${boot}\0${value}`;
        episode = { value, identity, deadline: new Date(now.getTime() + MAINTENANCE_BUDGET_MS), endedAt: undefined };
      }
      // A live migration moves the running VM: nothing on it ends.
      const advisory = value === RECURRING_MAINTENANCE;
      return [{ type: 'notice', kind: 'maintenance', identity: episode.identity, deadline: episode.deadline, raw, advisory }];
    },
  };
}
