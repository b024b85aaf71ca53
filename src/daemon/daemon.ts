import { EventEmitter } from 'node:events';
import type { Config } from '../config/types.js';
import { METADATA_BACKOFF, backoffDelay, sleep } from '../lib/backoff.js';
import { buildEvent, type StepSummary } from '../notice/event.js';
import { hostFacts, type HostFacts } from '../lib/host.js';
import { untilAborted } from '../lib/until-aborted.js';
import { Journal } from '../notice/journal.js';
import { isAdvisory, noticeToJSON, type Notice, type SourceName } from '../notice/notice.js';
import { buildPlan, executePlan, movePlanDeadline } from '../plan/executor.js';
import { findStepType, preloadStepTypes } from '../steps/registry.js';
import { detectProvider } from '../providers/detect.js';
import { createProvider } from '../providers/registry.js';
import type { MetadataRead, Provider } from '../providers/types.js';
import { providerOptions } from './provider-settings.js';
import { resumable } from './resumable.js';
import { SourceHealthBook } from './source-health.js';
import { RunningPlans, type RunningPlan } from './running-plans.js';
import { DaemonSyncs } from './syncs.js';
import type { DaemonDeps, DaemonEvents, DaemonHealth, DaemonState } from './types.js';

export class Daemon extends EventEmitter<DaemonEvents> {
  private stateValue: DaemonState = 'starting';
  private readonly abort = new AbortController();
  private readonly running = new RunningPlans();
  /** Set once run() has opened the journal and created the provider. */
  private started: { journal: Journal; provider: Provider } | null = null;
  private providerName: SourceName | null = null;
  private readonly sourceHealth: SourceHealthBook;
  private readSeen = false;
  private readonly now: () => number;
  private readonly host: HostFacts;
  /** Background syncs (top-level `sync:`), started after the first metadata read. */
  readonly syncs = new DaemonSyncs();

  constructor(private readonly deps: DaemonDeps) {
    super();
    this.now = deps.now ?? Date.now;
    this.sourceHealth = new SourceHealthBook(this.now);
    this.host = deps.host ?? hostFacts();
  }

  get state(): DaemonState {
    return this.stateValue;
  }

  health(): DaemonHealth {
    return {
      state: this.stateValue,
      provider: this.providerName,
      activeNotices: this.running.ids(),
      ...this.sourceHealth.report(this.deps.config, this.stateValue === 'watching'),
    };
  }

  /** Runs until stop(); resolves once the watch loop and every plan have ended. */
  async run(): Promise<void> {
    const { config, log } = this.deps;
    let journal: Journal;
    let provider: Provider;
    try {
      journal = await Journal.open(config.stateDir, log);
      provider = this.deps.provider ?? (await this.createConfiguredProvider());
    } catch (error) {
      this.setState('failed');
      throw error;
    }
    this.providerName = provider.name;
    if (this.abort.signal.aborted) {
      // stop() came while the provider was being detected: never start watching.
      this.setState('stopped');
      return;
    }
    this.started = { journal, provider };
    this.sourceHealth.watching(provider.sources ?? [provider.name]);
    this.setState('watching');

    for (const { notice, begunAt, finishedSteps } of journal.unfinished()) {
      if (!resumable(notice, begunAt, this.now())) {
        log.warn({ notice: noticeToJSON(notice), finishedSteps: [...finishedSteps.keys()] }, 'not resuming an interrupted plan: its deadline has passed');
        await journal.finish(notice.id, { finishedAt: this.now(), slackMs: null });
        continue;
      }
      log.info({ notice: noticeToJSON(notice), finishedSteps: [...finishedSteps.keys()] }, 'resuming a plan interrupted by a restart');
      this.startOrWait(notice, journal, provider);
    }

    // Providers report metadata errors and never end on their own; should one throw or
    // end anyway (a bug), the watch is started again after a backoff instead of the agent
    // exiting in the one minute that matters.
    for (let failures = 0; !this.abort.signal.aborted; ) {
      try {
        await this.watch(provider, journal);
        if (this.abort.signal.aborted) break;
        failures += 1;
        log.error({ provider: provider.name, failures }, 'the watch loop ended on its own; starting it again');
      } catch (error) {
        failures += 1;
        log.error({ provider: provider.name, failures, err: error }, 'the watch loop failed; starting it again');
      }
      await sleep(backoffDelay(failures, METADATA_BACKOFF), this.abort.signal);
    }
    await Promise.allSettled(this.running.all());
    await this.syncs.close();
    this.setState('stopped');
  }

  private async watch(provider: Provider, journal: Journal): Promise<void> {
    const { log } = this.deps;
    const events = provider.watch({ signal: this.abort.signal, log, onRead: (read) => this.recordRead(read) });
    for await (const event of untilAborted(events, this.abort.signal)) {
      if (event.type === 'withdrawn') {
        log.info({ noticeId: event.noticeId, reason: event.reason }, 'notice withdrawn');
        this.emit('withdrawn', event.noticeId, event.reason);
        continue;
      }
      const { notice } = event;
      const running = this.running.get(notice.id);
      if (running) this.moveDeadline(running, notice);
      else if (journal.status(notice.id) === 'new') this.startOrWait(notice, journal, provider);
    }
  }

  /**
   * Runs the plan for a notice the agent raised itself (its own shutdown: see
   * src/daemon/shutdown-plan.ts) exactly as for one the provider showed. Call it before stop():
   * stop() waits for the plans already running. False when not watching, or when that
   * notice is running or was handled already.
   */
  raiseNotice(notice: Notice): boolean {
    if (this.stateValue !== 'watching' || !this.started) return false;
    const { journal, provider } = this.started;
    if (this.running.get(notice.id) || journal.status(notice.id) !== 'new') return false;
    this.startOrWait(notice, journal, provider);
    return true;
  }

  /** Stops watching; plans already running finish within their deadlines. */
  async stop(): Promise<void> {
    if (this.stateValue === 'stopping' || this.stateValue === 'stopped') return;
    this.setState('stopping');
    this.abort.abort();
  }

  /**
   * Puts a new config into effect for notices that arrive from now on; a plan already
   * running keeps the config it was built with. The provider, its watch loop and the
   * journal were set up at start and keep their settings (TAKES_EFFECT in src/config/schema.ts says which).
   */
  reload(config: Config): void {
    this.deps.config = config;
    this.emit('reloaded', config);
    if (this.readSeen) void this.preloadSteps();
  }

  /**
   * Loads what the configured steps import on first use, after the first metadata read (so
   * after READY=1, which start-up reaches without them) and before any notice needs them.
   */
  private async preloadSteps(): Promise<void> {
    const failed = await preloadStepTypes(this.deps.config.steps.map((step) => step.type));
    for (const { type, reason } of failed) {
      this.deps.log.warn({ stepType: type, err: reason }, 'could not load a step type ahead of notices; it loads again when the step runs');
    }
  }

  private async createConfiguredProvider(): Promise<Provider> {
    const { config, log } = this.deps;
    let name: SourceName;
    if (config.provider === 'auto') {
      const detected = await detectProvider({ probe: true, metadataUrl: config.metadataUrl ?? undefined, log });
      name = detected.provider;
      log.info({ provider: name, how: detected.how }, `detected ${name}`);
      this.emit('providerReady', name, detected.how);
    } else {
      name = config.provider;
      this.emit('providerReady', name, 'configured');
    }
    return await createProvider(name, providerOptions(config, name), log);
  }

  private recordRead(read: MetadataRead): void {
    if (!this.readSeen) setImmediate(() => void Promise.all([this.preloadSteps(), this.syncs.start(this.deps.config, this.host, this.deps.log, () => this.running.ids().length > 0)]));
    this.readSeen = true;
    this.sourceHealth.record(read);
    this.emit('read', read);
  }

  /** Starts the notice's plan, or holds it until the plan already running for its kind ends. */
  private startOrWait(notice: Notice, journal: Journal, provider: Provider): void {
    const busy = this.running.ofKind(notice);
    if (!busy) return this.startPlan(notice, journal, provider);
    this.running.wait(notice);
    this.deps.log.warn(
      { noticeId: notice.id, runningNoticeId: busy.notice.id },
      `a ${notice.kind} plan is already running; notice ${notice.id} waits for it to end (one plan per kind at a time)`,
    );
  }

  private startPlan(notice: Notice, journal: Journal, provider: Provider): void {
    this.running.add(notice, (entry) =>
      this.handleNotice(entry, journal, provider)
        .catch((error: unknown) => this.deps.log.error({ err: error, noticeId: notice.id }, 'plan crashed; other notices are unaffected'))
        .finally(() => {
          const next = this.running.end(notice.id);
          if (next && !this.abort.signal.aborted && journal.status(next.id) === 'new') this.startPlan(next, journal, provider);
        }),
    );
  }

  /** The same notice with another time (a re-timed event): the running plan takes the new deadline. */
  private moveDeadline(running: RunningPlan, notice: Notice): void {
    const from = running.notice.deadline;
    if (from?.getTime() === notice.deadline?.getTime()) return;
    running.notice = notice;
    this.emit('noticeMoved', notice);
    if (running.plan) movePlanDeadline(running.plan, notice, this.deps.config, this.now());
    const planDeadline = running.plan?.planDeadline;
    this.deps.log.warn(
      { noticeId: notice.id, from: from?.toISOString() ?? null, to: notice.deadline?.toISOString() ?? null, planDeadline: planDeadline ? new Date(planDeadline).toISOString() : null },
      `the notice time moved to ${notice.deadline?.toISOString() ?? 'none'}: same event, the running plan keeps going with the new deadline`,
    );
  }

  private async handleNotice(running: RunningPlan, journal: Journal, provider: Provider): Promise<void> {
    const { config, log } = this.deps;
    this.syncs.noticeStarted();
    const resumed = journal.status(running.notice.id) === 'in_progress';
    if (!resumed) await journal.begin(running.notice);
    // The notice may have moved its time while the journal was written.
    const { notice } = running;
    this.emit('notice', notice);
    // A warning with time to spare: store what is complete now, uncapped.
    if (isAdvisory(notice) || notice.kind === 'maintenance') this.syncs.flush();
    const plan = buildPlan(notice, config, this.now(), findStepType);
    running.plan = plan;
    this.emit('planStarted', plan);
    log.warn(
      {
        notice: noticeToJSON(notice),
        planDeadline: plan.planDeadline === null ? null : new Date(plan.planDeadline).toISOString(),
        steps: plan.steps.map((step) => step.name),
        skippedByKind: plan.excluded,
      },
      `interruption notice: ${notice.kind}${notice.deadline ? ` at ${notice.deadline.toISOString()}` : ''}`,
    );
    // Every step outcome, journaled ones of a resumed plan included, is recorded by the
    // executor's recorder (src/plan/recorder.ts): it writes the journal and tells us here.
    const result = await executePlan(plan, {
      log,
      host: this.host,
      lookup: findStepType,
      journal,
      onStepStarted: (name) => this.emit('stepStarted', notice, name),
      onStepProgress: (name, detail) => this.emit('stepProgress', notice, name, detail),
      onStepFinished: (summary) => this.emit('stepFinished', notice, summary),
    });
    await journal.finish(notice.id, result);
    // plan.notice: the notice as last seen, with a time moved since the plan began.
    const event = buildEvent('plan.finished', plan.notice, this.host, plan.planDeadline, result.steps);
    const failed = result.steps.filter((step) => step.status !== 'ok' && step.status !== 'skipped');
    log[failed.length ? 'error' : 'info']({ event }, `plan finished: ${summarise(result.steps)}`);
    this.emit('planFinished', notice, result);
    if (config.azure.ackWhenDone && provider.acknowledge && notice.provider === provider.name) {
      await provider.acknowledge(notice, this.abort.signal).catch((error: unknown) =>
        log.error({ noticeId: notice.id, err: error }, 'acknowledging the event failed'),
      );
    }
  }

  private setState(state: DaemonState): void {
    if (state === this.stateValue) return;
    this.deps.log.info({ from: this.stateValue, to: state }, `daemon ${state}`);
    this.stateValue = state;
    this.emit('state', state);
  }
}

function summarise(steps: StepSummary[]): string {
  const counts = new Map<string, number>();
  for (const step of steps) counts.set(step.status, (counts.get(step.status) ?? 0) + 1);
  return [...counts].map(([status, count]) => `${count} ${status}`).join(', ') || 'no steps';
}

export function createDaemon(deps: DaemonDeps): Daemon {
  return new Daemon(deps);
}
