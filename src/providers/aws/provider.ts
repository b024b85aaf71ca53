import { jitteredInterval } from '../../lib/backoff.js';
import { REAL_CLOCK, type Clock } from '../../lib/clock.js';
import { type Logger } from '../../lib/log.js';
import { bootId } from '../../lib/boot-id.js';
import { noticeId, type InstanceFacts, type Notice, type NoticeKind } from '../../notice/notice.js';
import { parseInstanceAction, parseMaintenance, parseRebalance } from './payloads.js';
import { imdsSession } from './imds.js';
import { LIFECYCLE_PATH, LifecycleTracker } from './lifecycle.js';
import type { TokenSession } from '../metadata/token-session.js';
import { mergeLoops, type SourceLoop } from '../metadata/merge-loops.js';
import { FactsCache, readFactItems, type FactItems } from '../metadata/facts-cache.js';
import { MetadataClient } from '../metadata/client.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';
import { pollSource } from '../metadata/poll-loop.js';
import { SourceReport } from '../metadata/source-report.js';

export const AWS_METADATA_URL = 'http://169.254.169.254';
/** Rebalance recommendations are advisory: every 5 s (or the poll interval if longer). */
const REBALANCE_MIN_MS = 5_000;
/** Scheduled maintenance is announced days ahead: once a minute is plenty. */
const MAINTENANCE_MS = 60_000;
/**
 * An instance whose lifecycle item answered 404 is in no Auto Scaling group; it may be
 * attached to one later, so the item is still read, once a minute.
 */
const NO_GROUP_MS = 60_000;
/** Defaults of the aws settings the config may leave out (docs/config.md). */
export const AWS_NOTICE_DEFAULTS = { lifecycleTimeoutMs: 3_600_000, hibernateBudgetMs: 2_000 } as const;

/** Where each instance fact lives under /latest/meta-data/ (EC2 has no separate name). */
const FACT_ITEMS: FactItems = [
  ['id', 'instance-id'],
  ['type', 'instance-type'],
  ['zone', 'placement/availability-zone'],
  ['region', 'placement/region'],
  ['lifecycle', 'instance-life-cycle'],
  ['hostname', 'local-hostname'],
];

/** What a source found in one read, before instance facts are attached. */
type Finding =
  | { type: 'notice'; kind: NoticeKind; identity: string; deadline: Date | null; raw: unknown; advisory?: boolean }
  | { type: 'withdrawn'; noticeId: string; reason: string };

interface AwsSource {
  path: string;
  nextDelayMs(): number;
  /** Turns a body (null = 404) into findings; throws MetadataError on a bad body. */
  interpret(body: string | null): Finding[];
}

/**
 * AWS EC2 IMDSv2: polls `spot/instance-action` every poll interval (±2 % jitter),
 * `events/recommendations/rebalance` every max(poll interval, 5 s),
 * `events/maintenance/scheduled` every 60 s and `autoscaling/target-lifecycle-state` every
 * poll interval (every 60 s while it answers 404), each in its own loop so one never
 * delays another. Each notice id is yielded once per process (again when its deadline moves).
 */
export class AwsProvider implements Provider {
  readonly name = 'aws' as const;
  private readonly client: MetadataClient;
  private readonly session: TokenSession;
  private readonly facts = new FactsCache((signal, learn) => readFactItems(FACT_ITEMS, (path) => this.session.get(path, signal), learn));
  private readonly clock: Clock;

  /** `log` receives token warnings; without it they go to the log of the first watch. */
  constructor(
    private readonly options: ProviderOptions,
    log?: Logger,
  ) {
    this.clock = options.clock ?? REAL_CLOCK;
    this.client = new MetadataClient(options.baseUrl);
    this.session = imdsSession(this.client, options, log, options.aws.allowImdsV1 ? 'token-fails' : 'never');
  }

  /** Best effort, fetched once and cached once the instance id is known; never throws. */
  instanceFacts(signal: AbortSignal): Promise<InstanceFacts> {
    return this.facts.get(signal);
  }

  watch(context: WatchContext): AsyncIterable<ProviderEvent> {
    return this.run(context);
  }

  private async *run(context: WatchContext): AsyncGenerator<ProviderEvent> {
    this.session.attach(context);
    const poll = this.options.pollIntervalMs;
    const boot = this.options.bootId ?? bootId();
    const { lifecycleTimeoutMs, hibernateBudgetMs } = { ...AWS_NOTICE_DEFAULTS, ...this.options.aws };
    const sources: AwsSource[] = [
      instanceActionSource(boot, () => jitteredInterval(poll), hibernateBudgetMs),
      rebalanceSource(boot, () => jitteredInterval(Math.max(poll, REBALANCE_MIN_MS))),
      maintenanceSource(() => jitteredInterval(MAINTENANCE_MS)),
      lifecycleSource(boot, poll, lifecycleTimeoutMs),
    ];
    // Fetched now so that a notice found later carries the facts without waiting for them.
    void this.instanceFacts(context.signal);
    try {
      yield* mergeLoops(context.signal, sources.map((source) => this.pollLoop(source, context)));
    } finally {
      this.session.close();
      this.client.close();
    }
  }

  private pollLoop(source: AwsSource, context: WatchContext): SourceLoop {
    return async (emit, signal) => {
      const findings = pollSource(
        {
          report: new SourceReport(source.path, context),
          clock: this.clock,
          nextIntervalMs: source.nextDelayMs,
          read: async (readSignal) => {
            const body = await this.session.get(source.path, readSignal);
            return { status: body === null ? 404 : 200, found: source.interpret(body) };
          },
        },
        signal,
      );
      for await (const finding of findings) emit(await this.toEvent(finding, signal));
    };
  }

  private async toEvent(finding: Finding, signal: AbortSignal): Promise<ProviderEvent> {
    if (finding.type === 'withdrawn') return finding;
    const detectedAt = new Date();
    const notice: Notice = {
      id: noticeId('aws', finding.kind, finding.identity),
      provider: 'aws',
      kind: finding.kind,
      deadline: finding.deadline,
      detectedAt,
      instance: await this.facts.forNotice(signal),
      raw: finding.raw,
      ...(finding.advisory === true ? { advisory: true } : {}),
    };
    return { type: 'notice', notice };
  }
}

/**
 * A source whose item holds at most one notice: 404 is nothing. The notice's identity is
 * the boot and the item (see "Notice identity" in DESIGN.md), never its time, which some
 * metadata services recompute on every answer: it is yielded once per process, and again
 * only when its deadline moved (same id, so the daemon moves the running plan's deadline).
 * A notice that disappears again is not a cancellation: AWS never cancels spot notices or
 * rebalance recommendations.
 */
function oneNoticeSource(path: string, nextDelayMs: () => number, read: (body: string) => Finding & { type: 'notice' }): AwsSource {
  /** Identity → the deadline last yielded for it (epoch ms, null for none). */
  const yielded = new Map<string, number | null>();
  return {
    path,
    nextDelayMs,
    interpret(body) {
      if (body === null) return [];
      const finding = read(body);
      const deadline = finding.deadline?.getTime() ?? null;
      if (yielded.has(finding.identity) && yielded.get(finding.identity) === deadline) return [];
      yielded.set(finding.identity, deadline);
      return [finding];
    },
  };
}

/**
 * A hibernating instance gets no warning: it starts hibernating as the notice appears,
 * whatever `time` says. Its deadline is when it was first seen plus `hibernateBudgetMs`.
 */
function instanceActionSource(boot: string, nextDelayMs: () => number, hibernateBudgetMs: number): AwsSource {
  let hibernateSeenAt: number | undefined;
  return oneNoticeSource('spot/instance-action', nextDelayMs, (body) => {
    const action = parseInstanceAction(body);
    if (action.action === 'hibernate') hibernateSeenAt ??= Date.now();
    const deadline = action.action === 'hibernate' ? new Date(hibernateSeenAt! + hibernateBudgetMs) : action.time;
    return { type: 'notice', kind: action.action, identity: `${boot}\0spot/instance-action`, deadline, raw: action.raw };
  });
}

/**
 * Auto Scaling termination (lifecycle.ts): a terminate notice whose deadline is the
 * lifecycle hook's timeout from when it was seen; withdrawn when the target state changes again.
 */
function lifecycleSource(boot: string, pollIntervalMs: number, lifecycleTimeoutMs: number): AwsSource {
  const tracker = new LifecycleTracker(boot);
  return {
    path: LIFECYCLE_PATH,
    nextDelayMs: () => jitteredInterval(tracker.inGroup ? pollIntervalMs : Math.max(pollIntervalMs, NO_GROUP_MS)),
    interpret(body) {
      const change = tracker.read(body);
      if (change === undefined) return [];
      if (change.type === 'withdrawn') {
        return [{ type: 'withdrawn', noticeId: noticeId('aws', 'terminate', change.identity), reason: `the Auto Scaling target lifecycle state is ${change.state} again` }];
      }
      return [{ type: 'notice', kind: 'terminate', identity: change.identity, deadline: new Date(Date.now() + lifecycleTimeoutMs), raw: change.state }];
    },
  };
}

function rebalanceSource(boot: string, nextDelayMs: () => number): AwsSource {
  return oneNoticeSource('events/recommendations/rebalance', nextDelayMs, (body) => {
    const recommendation = parseRebalance(body);
    return { type: 'notice', kind: 'rebalance', identity: `${boot}\0events/recommendations/rebalance`, deadline: null, raw: recommendation.raw };
  });
}

/**
 * Scheduled events that leave the instance running (network or power work on the host):
 * their notices are advisory. Reboots, stops and retirement end what runs on it.
 */
const VM_KEEPING_MAINTENANCE_CODES: readonly string[] = ['system-maintenance'];

function maintenanceSource(nextDelayMs: () => number): AwsSource {
  /** EventId → notice id of events yielded and not yet withdrawn. */
  const shown = new Map<string, string>();
  const done = new Set<string>();
  return {
    path: 'events/maintenance/scheduled',
    nextDelayMs,
    interpret(body) {
      if (body === null) return [];
      const findings: Finding[] = [];
      for (const event of parseMaintenance(body)) {
        if (done.has(event.eventId)) continue;
        const id = shown.get(event.eventId);
        if (event.ended) {
          if (id === undefined) continue;
          shown.delete(event.eventId);
          done.add(event.eventId);
          findings.push({ type: 'withdrawn', noticeId: id, reason: `AWS maintenance event ${event.eventId} (${event.code}) is ${event.state}` });
        } else if (id === undefined) {
          shown.set(event.eventId, noticeId('aws', 'maintenance', event.eventId));
          const advisory = VM_KEEPING_MAINTENANCE_CODES.includes(event.code);
          findings.push({ type: 'notice', kind: 'maintenance', identity: event.eventId, deadline: event.notBefore, raw: event.raw, advisory });
        }
      }
      return findings;
    },
  };
}
