import type { LevelWithSilent } from 'pino';
import type { NoticeKind, SourceName } from '../notice/notice.js';
import type { SyncEntry } from './sync-schema.js';

/** One step of the plan after validation: exactly one type, durations in ms. */
export interface StepConfig {
  name: string;
  /** The step type key (`webhook`, `signal`, ...). */
  type: string;
  /** Options compiled by that type's schema. */
  options: unknown;
  after: string[];
  /** Notice kinds this step runs for; null means every kind except the opt-in ones (freeze). */
  on: NoticeKind[] | null;
  /** The step's own time limit; the plan deadline bounds it too. */
  timeoutMs: number;
}

/**
 * A taint, label or condition on the own Node that means an interruption (`provider:
 * kubernetes`). Exactly one of taint, label, condition is set.
 */
export interface NodeSignal {
  /** Names the signal in notices and logs; part of the notice id. A default's name replaces that default. */
  name: string;
  /** A taint key; `value`, when set, must match too. */
  taint?: string;
  /** A label key; `value`, when set, must match too. */
  label?: string;
  value?: string;
  /** A condition type; it matches with `status` (True unless set) and, when set, a `message` it contains. */
  condition?: string;
  status?: 'True' | 'False' | 'Unknown';
  message?: string;
  kind: NoticeKind;
  /** From when the signal was set; null: no deadline (advisory). */
  deadlineMs: number | null;
}

/** The compiled configuration: defaults filled, references resolved, durations as `*Ms`. */
export interface Config {
  /** The file it came from, for messages; undefined when built from flags alone. */
  file: string | undefined;
  provider: 'auto' | SourceName;
  /** Overrides the metadata service base URL (simulators, tests). */
  metadataUrl: string | null;
  pollIntervalMs: number;
  /** Time limit of one ordinary metadata request. */
  requestTimeoutMs: number;
  stateDir: string;
  /** Where the current notice is kept as JSON for applications to read; null: no file. */
  noticeFile: string | null;
  safetyMarginMs: number;
  /** Budget a plan still gets when its notice deadline is already past. */
  minimumBudgetMs: number;
  logLevel: LevelWithSilent;
  /**
   * SIGTERM while the host shuts down: `exit` cleanly (default), or `run-plan` for a
   * `shutdown` notice within the unit's stop timeout first (src/daemon/shutdown-plan.ts).
   */
  onShutdownSignal: 'exit' | 'run-plan';
  aws: {
    allowImdsV1: boolean;
    tokenTtlSeconds: number;
    tokenTimeoutMs: number;
    /** Deadline of an Auto Scaling termination, from when it is seen: the lifecycle hook's timeout. */
    lifecycleTimeoutMs: number;
    /** What a hibernate notice leaves the plan: the instance starts hibernating at once. */
    hibernateBudgetMs: number;
  };
  gcp: {
    /** `timeout_sec` of a hanging GET. */
    hangTimeoutSeconds: number;
    /** The Spot preemption notice duration the VM was created with (0 or 120 s): added to the preempt deadline. */
    preemptionNoticeDurationMs: number;
  };
  azure: {
    /** Acknowledge the event (StartRequests) once the plan has finished, so Azure proceeds early. */
    ackWhenDone: boolean;
    /** Time limit of Scheduled Events calls until one succeeds: switching the service on takes up to ~2 min. */
    firstCallTimeoutMs: number;
  };
  alibaba: {
    /** Ask for a hardened-mode token; plain GETs are used when the service offers none. */
    hardened: boolean;
    /** Lifetime of that token, 1 to 21600 s. */
    tokenTtlSeconds: number;
  };
  /** The own Node as a notice source: `provider: kubernetes`, or `watchNode` beside a cloud (docs/kubernetes.md). */
  kubernetes: {
    /** The Node's name; null: the NODE_NAME env (the downward API's spec.nodeName). */
    node: string | null;
    /** A kubeconfig file; null: the pod's service account. */
    kubeconfig: string | null;
    /** Watch the Node alongside the cloud's metadata service (any provider but kubernetes). */
    watchNode: boolean;
    /** Signals added to the defaults, or replacing the default of the same name. */
    signals: NodeSignal[];
  };
  /** The local HTTP server: /healthz, /readyz, /metrics, /v1/status (docs/operations.md). */
  server: { enabled: boolean; host: string; port: number };
  readiness: {
    /** Notice kinds that turn /readyz to 503 while handled (default: all but rebalance). */
    notReadyOn: NoticeKind[];
  };
  /** Background syncs by name (docs/snapshot.md, "Background sync"). */
  sync: Record<string, SyncEntry>;
  steps: StepConfig[];
}
