import type { z } from 'zod';
import type { PreemptdEvent, StepSummary } from '../notice/event.js';
import type { HostFacts } from '../lib/host.js';
import type { Logger } from '../lib/log.js';
import type { InstanceFacts, Notice } from '../notice/notice.js';

/** What a running step may use. A step knows nothing of clouds: only the notice. */
export interface StepContext {
  readonly stepName: string;
  /** Which run this is: at the notice, or after the plan (finish-phase steps); undefined means notice. */
  readonly phase?: 'notice' | 'finish';
  readonly notice: Notice;
  readonly host: HostFacts;
  readonly log: Logger;
  /** Aborted when the step's own timeout or the plan deadline is reached. */
  readonly signal: AbortSignal;
  /** Epoch ms by which this step must be done (the earlier of its timeout and the plan deadline). */
  readonly deadline: number;
  /** Epoch ms of the plan deadline; null when the notice has none. */
  readonly planDeadline: number | null;
  /**
   * Epoch ms when the latest of the steps this one waits for (`after:`) started: what "new"
   * means to a step that waits for their effect. The notice's detection time when it waits for
   * none, or they ran before a restart.
   */
  readonly followsStartedAt: number;
  /** The versioned event for this notice; `plan.finished` carries the other steps' outcomes. */
  event(type: PreemptdEvent['type']): PreemptdEvent;
  /** Outcomes of the steps that finished so far (for summary webhooks). */
  finishedSteps(): StepSummary[];
  /** Report progress (bytes moved, pids seen); shown in status and the summary. */
  progress(detail: Record<string, unknown>): void;
}

/** Facts a step returns on success; they land in the summary's `detail`. */
export type StepDetail = Record<string, unknown>;

/** One line of `preemptd check`: something a step needs, and whether it is there. */
export interface CheckResult {
  /** What was looked at, e.g. `pidfile /run/trainer.pid`; never a secret (no full webhook URL). */
  what: string;
  ok: boolean;
  /** What was found, or what is wrong and how to fix it. */
  reason: string;
}

/** What a step's undo may use. */
export interface UndoContext {
  /** The withdrawn notice; undefined: clear what a previous boot left. */
  readonly noticeId: string | undefined;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

/** What a step's preview may use. */
export interface PreviewContext {
  readonly signal: AbortSignal;
  readonly host: HostFacts;
}

/** What a step's check may use. */
export interface CheckContext {
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** What the metadata service says of this instance; undefined when it did not answer. */
  readonly instance: Promise<InstanceFacts | undefined>;
}

/**
 * One step type. The executor knows only this interface; each file in steps/ exports one
 * object checked with `satisfies StepType<...>`.
 */
export interface StepType<Options> {
  /** The key that selects this type in a config step entry (`webhook:`, `signal:`...). */
  readonly type: string;
  /** Validates and compiles the options (durations to ms, defaults filled). */
  readonly schema: z.ZodType<Options>;
  /** Runs the step. Throw (StepFailure preferred) to fail it; return facts for the summary. */
  run(options: Options, context: StepContext): Promise<StepDetail | void>;
  /** One line for `simulate --dry-run`: what this step would do. */
  describe(options: Options): string;
  /**
   * True when running it for a notice that does not end the VM would do harm (stopping a
   * workload, draining a service, a user's command). Such a step runs on an advisory notice
   * (rebalance, live migration, freeze) only when its `on:` names that kind. A function
   * when it depends on the options (a kubernetes step that only labels the Node is not).
   */
  readonly destructive: boolean | ((options: Options) => boolean);
  /**
   * The timeout (ms) when the step sets no `timeout:`: what this step needs with these
   * options, so a default never eats a short notice window (30 s on GCP). Without it: 60 s.
   */
  defaultTimeoutMs?(options: Options): number;
  /** Runs when the plan has finished (e.g. summary webhooks); default: never. */
  readonly phase?: (options: Options) => 'notice' | 'finish' | 'both';
  /**
   * For `preemptd check`: could this step run here, now? Looks only, never acts: no request
   * is sent, no signal delivered, nothing uploaded. Optional: without it check lists the
   * step with its description.
   */
  check?(options: Options, context: CheckContext): Promise<CheckResult[]>;
  /**
   * For `simulate --dry-run`: what run() would act on here and now, found by reading only
   * (the pods a drain would evict, in order), as lines under the plan. Rejects when it
   * cannot look; the dry run then says only the description is known. Optional.
   */
  preview?(options: Options, context: PreviewContext): Promise<string[]>;
  /**
   * Takes back what run() left behind once it is no longer wanted: for `noticeId` when the
   * cloud withdraws that notice, or (noticeId undefined, at start-up) what a previous boot
   * left. Only what this agent did, never what someone else changed since. Optional.
   */
  undo?(options: Options, context: UndoContext): Promise<void>;
  /**
   * Loads what run() needs but start-up should not wait for (modules imported on first use).
   * Called once the agent is watching, for each configured step type; optional.
   */
  preload?(): Promise<void>;
}

/** A step type with its options type erased, for registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- erasure: `unknown` fails, as `phase` takes Options contravariantly; the schema parses options before any use
export type AnyStepType = StepType<any>;

/** Finds a step type by its config key; tests pass their own fake types. */
export type StepTypeLookup = (type: string) => AnyStepType | undefined;
