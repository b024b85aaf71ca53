import { Counter, Gauge, Histogram, Registry } from './prom-client.js';
import type { Daemon } from '../daemon/daemon.js';
import { DaemonSubscription } from '../daemon/subscription.js';
import { suppressedLogLines } from '../lib/log-limit.js';
import type { StepConfig } from '../config/types.js';
import { AGENT_VERSION } from '../lib/host.js';
import type { StepStatus, StepSummary } from '../notice/event.js';
import { NOTICE_KINDS, type Notice } from '../notice/notice.js';
import { fromJournal, type Plan } from '../plan/executor.js';
import { registerProcessMetrics } from './process-metrics.js';
import { registerSyncMetrics } from './sync-metrics.js';
import type { MetadataRead } from '../providers/types.js';

/** Metadata latency: loopback answers in ~1 ms, IMDS in a few, GCP hanging GETs up to a minute. */
const METADATA_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 90];
/** Notice to first step should be milliseconds; seconds means something is wrong. */
const REACTION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const STEP_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Step type whose `bytesDone` (cumulative, in progress reports and the detail) feeds the snapshot metrics. */
const SNAPSHOT_TYPE = 'snapshot';

/**
 * `ok` when the metadata service answered as expected (a 404 "nothing here" included),
 * `http_error` when it answered with an error status, `no_answer` when no usable answer
 * came (timeout, refused, reset, bad body).
 */
export function readOutcome(read: MetadataRead): 'ok' | 'http_error' | 'no_answer' {
  if (read.ok) return 'ok';
  return read.status === undefined ? 'no_answer' : 'http_error';
}

function bytesOf(detail: Record<string, unknown> | undefined): number | undefined {
  const bytes = detail?.bytesDone;
  return typeof bytes === 'number' && Number.isFinite(bytes) && bytes >= 0 ? bytes : undefined;
}

export interface MetricsOptions {
  /** Also export process metrics (CPU, memory, open fds, Node version). */
  processMetrics?: boolean;
  /** The configured steps: their outcome series are exported at 0 before any notice. */
  steps?: readonly Pick<StepConfig, 'name' | 'type'>[];
}

/** Every status a step run can end with: each configured step has a series for each from the start. */
const STEP_STATUSES: readonly StepStatus[] = ['ok', 'failed', 'timed_out', 'skipped'];

interface MetricName {
  name: string;
  help: string;
}

/**
 * Finished runs of one thing (metadata requests, steps): a counter by how each run ended and a
 * histogram of how long it took, over the same labels. Recorded together, so the two always agree.
 */
class RunMetrics<Label extends string> {
  private readonly total: Counter<string>;
  private readonly duration: Histogram<Label>;
  private readonly outcomeLabel: string;

  constructor(
    registers: Registry[],
    spec: { labelNames: Label[]; outcomeLabel: string; total: MetricName; duration: MetricName & { buckets: number[] } },
  ) {
    this.outcomeLabel = spec.outcomeLabel;
    this.total = new Counter({ ...spec.total, labelNames: [...spec.labelNames, spec.outcomeLabel], registers });
    this.duration = new Histogram({ ...spec.duration, labelNames: spec.labelNames, registers });
  }

  record(labels: Record<Label, string>, outcome: string, seconds: number): void {
    this.total.inc({ ...labels, [this.outcomeLabel]: outcome });
    this.duration.observe(labels, seconds);
  }

  /**
   * Exports these series at 0 (a series already counting keeps its value). An alert on
   * `increase(...) > 0` cannot see the first increase of a series that did not exist before
   * it: on a dying VM the first failure is often the only one.
   */
  zero(labels: Record<Label, string>, outcomes: readonly string[]): void {
    for (const outcome of outcomes) this.total.inc({ ...labels, [this.outcomeLabel]: outcome }, 0);
  }
}

/**
 * The Prometheus view of one daemon. It only listens to daemon events: no other module
 * calls into metrics, so what is measured is decided here in one place.
 */
export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly subscription: DaemonSubscription;
  private provider = 'unknown';
  /** Notices whose first step has not started yet, with when they were detected. */
  private readonly awaitingFirstStep = new Map<string, number>();
  /** Per notice, snapshot step name → bytes already counted (progress reports are cumulative). */
  private readonly countedBytes = new Map<string, Map<string, number>>();
  /** Per notice, step name → type, from the plan. */
  private readonly stepTypes = new Map<string, Map<string, string>>();
  private readonly stepStartedAt = new Map<string, number>();

  private readonly metadataRequests: RunMetrics<'provider' | 'source'>;
  private readonly lastSuccessfulPoll: Gauge;
  private readonly notices: Counter<'kind'>;
  private readonly noticeToFirstStep: Histogram;
  private readonly stepRuns: RunMetrics<'step' | 'type'>;
  private readonly planSlack: Gauge;
  private readonly snapshotBytes: Counter<'step'>;
  private readonly snapshotRate: Gauge<'step'>;

  constructor(
    private readonly daemon: Daemon,
    options: MetricsOptions = {},
  ) {
    this.subscription = new DaemonSubscription(daemon);
    const registers = [this.registry];
    this.metadataRequests = new RunMetrics(registers, {
      labelNames: ['provider', 'source'],
      outcomeLabel: 'outcome',
      total: { name: 'preemptd_metadata_requests_total', help: 'Metadata service requests by provider, source and outcome (ok, http_error, no_answer).' },
      duration: { name: 'preemptd_metadata_request_duration_seconds', help: 'Time from sending a metadata request to its answer or failure.', buckets: METADATA_BUCKETS },
    });
    this.lastSuccessfulPoll = new Gauge({
      name: 'preemptd_last_successful_poll_timestamp_seconds',
      help: 'Unix time of the last metadata request that succeeded.',
      registers,
    });
    this.notices = new Counter({ name: 'preemptd_notices_total', help: 'Interruption notices handled, by kind.', labelNames: ['kind'], registers });
    const daemonRef = this.daemon;
    // Read from the daemon at scrape time, so a plan that crashed cannot leave it wrong.
    new Gauge({
      name: 'preemptd_active_plans',
      help: 'Plans running now.',
      registers,
      collect() {
        this.set(daemonRef.health().activeNotices.length);
      },
    });
    // What the log limiter dropped (a flapping metadata source); the failed reads themselves are in metadata_requests.
    const suppressedReported = new Map<string, number>();
    new Counter({
      name: 'preemptd_log_lines_suppressed_total',
      help: 'Repeated log lines dropped by the log limiter (at most 5 a minute per metadata source are written), by source.',
      labelNames: ['source'],
      registers,
      collect() {
        for (const [source, total] of suppressedLogLines()) {
          this.inc({ source }, total - (suppressedReported.get(source) ?? 0));
          suppressedReported.set(source, total);
        }
      },
    });
    this.noticeToFirstStep = new Histogram({
      name: 'preemptd_notice_to_first_step_seconds',
      help: 'Time from detecting a notice to starting the first step of its plan.',
      buckets: REACTION_BUCKETS,
      registers,
    });
    this.stepRuns = new RunMetrics(registers, {
      labelNames: ['step', 'type'],
      outcomeLabel: 'status',
      total: { name: 'preemptd_step_outcomes_total', help: 'Finished step runs by step, type and status (ok, failed, timed_out, skipped).' },
      duration: { name: 'preemptd_step_duration_seconds', help: 'How long each step run took.', buckets: STEP_BUCKETS },
    });
    this.planSlack = new Gauge({
      name: 'preemptd_plan_deadline_slack_seconds',
      help: 'Seconds left before the plan deadline when the last plan with a deadline finished (negative: overran).',
      registers,
    });
    this.snapshotBytes = new Counter({
      name: 'preemptd_snapshot_bytes_total',
      help: 'Bytes uploaded by snapshot steps.',
      labelNames: ['step'],
      registers,
    });
    this.snapshotRate = new Gauge({
      name: 'preemptd_snapshot_throughput_bytes_per_second',
      help: 'Average upload rate of the last finished run of each snapshot step.',
      labelNames: ['step'],
      registers,
    });
    new Gauge({ name: 'preemptd_build_info', help: 'The running build: always 1, labelled with the agent and Node.js versions.', labelNames: ['version', 'node'], registers }).set(
      { version: AGENT_VERSION, node: process.version },
      1,
    );
    for (const kind of NOTICE_KINDS) this.notices.inc({ kind }, 0);
    this.zeroSteps(options.steps ?? []);
    if (options.processMetrics ?? true) registerProcessMetrics(registers);
    registerSyncMetrics(registers, () => this.daemon.syncs.status());

    this.subscription.on('state', () => (this.provider = this.daemon.health().provider ?? 'unknown'));
    this.subscription.on('providerReady', (provider) => (this.provider = provider));
    this.subscription.on('reloaded', (config) => this.zeroSteps(config.steps));
    this.subscription.on('read', (read) => this.recordRead(read));
    this.subscription.on('notice', (notice) => this.recordNotice(notice));
    this.subscription.on('planStarted', (plan) => this.recordPlan(plan));
    this.subscription.on('stepStarted', (notice, name) => this.recordStepStarted(notice, name));
    this.subscription.on('stepProgress', (notice, name, detail) => this.recordProgress(notice, name, bytesOf(detail)));
    this.subscription.on('stepFinished', (notice, summary) => this.recordStep(notice, summary));
    this.subscription.on('planFinished', (notice, result) => {
      if (result.slackMs !== null) this.planSlack.set(result.slackMs / 1000);
      this.forget(notice.id);
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for one scrape. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops listening to the daemon. */
  close(): void {
    this.subscription.close();
  }


  private zeroSteps(steps: readonly Pick<StepConfig, 'name' | 'type'>[]): void {
    for (const step of steps) this.stepRuns.zero({ step: step.name, type: step.type }, STEP_STATUSES);
  }

  private recordRead(read: MetadataRead): void {
    // A read of the Node watched beside the cloud names its own provider.
    this.metadataRequests.record({ provider: read.provider ?? this.provider, source: read.source }, readOutcome(read), read.ms / 1000);
    if (read.ok) this.lastSuccessfulPoll.set(Date.now() / 1000);
  }

  private recordNotice(notice: Notice): void {
    this.notices.inc({ kind: notice.kind });
    this.awaitingFirstStep.set(notice.id, notice.detectedAt.getTime());
  }

  private recordPlan(plan: Plan): void {
    this.stepTypes.set(plan.noticeId, new Map(plan.runs.map((run) => [run.name, run.step.type])));
  }

  private recordStepStarted(notice: Notice, name: string): void {
    this.stepStartedAt.set(`${notice.id}\0${name}`, Date.now());
    const detectedAt = this.awaitingFirstStep.get(notice.id);
    if (detectedAt === undefined) return;
    this.awaitingFirstStep.delete(notice.id);
    this.noticeToFirstStep.observe(Math.max(0, Date.now() - detectedAt) / 1000);
  }

  private recordStep(notice: Notice, summary: StepSummary): void {
    // A run a resumed plan had finished before the restart is no new outcome: the agent that
    // ran it counted it (Prometheus sees that counter reset with the restart), so counting it
    // again here would report one failure, or one upload's bytes, twice.
    if (fromJournal(summary)) return;
    this.stepRuns.record({ step: summary.name, type: summary.type }, summary.status, summary.ms / 1000);
    this.stepStartedAt.delete(`${notice.id}\0${summary.name}`);
    const bytes = summary.type === SNAPSHOT_TYPE ? bytesOf(summary.detail) : undefined;
    if (bytes === undefined) return;
    this.countBytes(notice, summary.name, bytes);
    if (summary.ms > 0) this.snapshotRate.set({ step: summary.name }, bytes / (summary.ms / 1000));
  }

  /** A snapshot step's progress report: bytes so far, and the rate since it started. */
  private recordProgress(notice: Notice, name: string, bytes: number | undefined): void {
    const type = this.stepTypes.get(notice.id)?.get(name);
    if (bytes === undefined || (type !== undefined && type !== SNAPSHOT_TYPE)) return;
    this.countBytes(notice, name, bytes);
    const startedAt = this.stepStartedAt.get(`${notice.id}\0${name}`);
    const seconds = startedAt === undefined ? 0 : (Date.now() - startedAt) / 1000;
    if (seconds > 0) this.snapshotRate.set({ step: name }, bytes / seconds);
  }

  /** Counts what a snapshot step moved since its last report (`bytesDone` is cumulative). */
  private countBytes(notice: Notice, name: string, bytes: number): void {
    let counted = this.countedBytes.get(notice.id);
    if (!counted) this.countedBytes.set(notice.id, (counted = new Map()));
    const before = counted.get(name) ?? 0;
    if (bytes <= before) return;
    this.snapshotBytes.inc({ step: name }, bytes - before);
    counted.set(name, bytes);
  }

  private forget(noticeId: string): void {
    this.awaitingFirstStep.delete(noticeId);
    this.countedBytes.delete(noticeId);
    this.stepTypes.delete(noticeId);
    for (const key of this.stepStartedAt.keys()) if (key.startsWith(`${noticeId}\0`)) this.stepStartedAt.delete(key);
  }
}

export function createMetrics(daemon: Daemon, options?: MetricsOptions): DaemonMetrics {
  return new DaemonMetrics(daemon, options);
}
