import type { NodeSignal } from '../../config/types.js';
import type { KubeNode } from '../../kubernetes/node.js';

/**
 * The platform signals watched on the own Node unless `kubernetes.signals` replaces one
 * by name. Deadlines are what each platform documents (or its default), counted from
 * when the signal was set (a taint's timeAdded, a condition's lastTransitionTime) or,
 * without such a time, from when preemptd saw it.
 */
export const DEFAULT_NODE_SIGNALS: readonly NodeSignal[] = [
  // Karpenter taints a node it is about to drain (spot interruption, consolidation, drift); 2 min is a spot interruption's notice.
  { name: 'karpenter-disrupted', taint: 'karpenter.sh/disrupted', kind: 'terminate', deadlineMs: 120_000 },
  // cluster-autoscaler taints a node it scales down; it waits up to --max-graceful-termination-sec (600 s by default).
  { name: 'cluster-autoscaler-to-be-deleted', taint: 'ToBeDeletedByClusterAutoscaler', kind: 'terminate', deadlineMs: 600_000 },
  // AKS's node-problem-detector sets this condition for an Azure Scheduled Event; 30 s is the shortest (Preempt).
  { name: 'aks-vm-event-scheduled', condition: 'VMEventScheduled', status: 'True', kind: 'maintenance', deadlineMs: 30_000 },
  // CoreWeave cordons a Spot Node and labels it, then drains it within at most seven minutes.
  { name: 'coreweave-pending-preemption', label: 'qos.coreweave.cloud/pending-preemption', value: 'true', kind: 'preempt', deadlineMs: 420_000 },
  // The kubelet's graceful node shutdown marks the Node not ready with this message; shutdownGracePeriod is often 30 s.
  { name: 'kubelet-node-shutdown', condition: 'Ready', status: 'False', message: 'node is shutting down', kind: 'terminate', deadlineMs: 30_000 },
];

/** The defaults with the configured signals in place of the defaults they name, then the rest of them. */
export function effectiveSignals(configured: readonly NodeSignal[]): NodeSignal[] {
  const names = new Set(configured.map((signal) => signal.name));
  return [...DEFAULT_NODE_SIGNALS.filter((signal) => !names.has(signal.name)), ...configured];
}

export interface SignalMatch {
  signal: NodeSignal;
  /** When the platform set it, where the Node says so. */
  since: Date | undefined;
  /** The taint, label or condition that matched, as the Node shows it. */
  evidence: unknown;
}

function parsedTime(value: string | undefined): Date | undefined {
  const time = value === undefined ? NaN : Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time);
}

/** Which signals the Node shows now. */
export function matchSignals(node: KubeNode, signals: readonly NodeSignal[]): SignalMatch[] {
  const matches: SignalMatch[] = [];
  for (const signal of signals) {
    if (signal.taint !== undefined) {
      const taint = node.spec?.taints?.find((entry) => entry.key === signal.taint && (signal.value === undefined || entry.value === signal.value));
      if (taint) matches.push({ signal, since: parsedTime(taint.timeAdded), evidence: { taint } });
    } else if (signal.label !== undefined) {
      const value = node.metadata.labels?.[signal.label];
      if (value !== undefined && (signal.value === undefined || value === signal.value)) matches.push({ signal, since: undefined, evidence: { label: { [signal.label]: value } } });
    } else if (signal.condition !== undefined) {
      const condition = node.status?.conditions?.find((entry) => entry.type === signal.condition);
      if (condition && condition.status === (signal.status ?? 'True') && (signal.message === undefined || (condition.message ?? '').includes(signal.message))) {
        matches.push({ signal, since: parsedTime(condition.lastTransitionTime), evidence: { condition } });
      }
    }
  }
  return matches;
}
