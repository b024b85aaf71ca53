import type { Config } from '../config/types.js';
import type { Logger } from '../lib/log.js';
import { findStepType } from '../steps/registry.js';
import type { StepTypeLookup } from '../steps/types.js';
import type { Daemon } from './daemon.js';

export interface StepUndoDeps {
  daemon: Daemon;
  config: Config;
  log: Logger;
  lookup?: StepTypeLookup;
}

/**
 * Runs the undo of every configured step that has one: at start-up for what a previous boot
 * left (a node still cordoned after a maintenance reboot), and when the cloud withdraws a
 * notice (a cancelled maintenance, a rebalance that passed). A failed undo is logged; each
 * is bounded by its step's timeout.
 */
export class StepUndo {
  private config: Config;
  private readonly pending = new Set<Promise<void>>();
  private readonly deps: StepUndoDeps;
  private readonly onWithdrawn = (noticeId: string): void => this.undo(noticeId);
  private readonly onReloaded = (config: Config): void => {
    this.config = config;
  };

  constructor(deps: StepUndoDeps) {
    this.deps = deps;
    this.config = deps.config;
    deps.daemon.on('withdrawn', this.onWithdrawn).on('reloaded', this.onReloaded);
    this.undo(undefined);
  }

  private undo(noticeId: string | undefined): void {
    const { log, lookup = findStepType } = this.deps;
    for (const step of this.config.steps) {
      const undo = lookup(step.type)?.undo;
      if (!undo) continue;
      const work: Promise<void> = undo(step.options, { noticeId, log, signal: AbortSignal.timeout(step.timeoutMs) })
        .catch((error: unknown) => log.warn({ step: step.name, noticeId: noticeId ?? null, err: error }, `could not take back what step ${step.name} did`))
        .finally(() => this.pending.delete(work));
      this.pending.add(work);
    }
  }

  /** Stops listening and waits for the undos under way. */
  async close(): Promise<void> {
    this.deps.daemon.off('withdrawn', this.onWithdrawn).off('reloaded', this.onReloaded);
    await Promise.allSettled([...this.pending]);
  }
}
