import type { KubePod } from '../../kubernetes/pods.js';
import type { DrainOptions } from './options.js';
import { matchesSelector } from './selector.js';

/** The DaemonSet that controls the pod, if one does. */
export function daemonSetOf(pod: KubePod): string | undefined {
  return pod.metadata.ownerReferences?.find((owner) => owner.controller && owner.kind === 'DaemonSet')?.name;
}

/**
 * Why a pod of the Node is not evicted, or undefined when it is. A pod whose DaemonSet is
 * gone (`orphan`) is evicted: nothing would recreate it on this Node anyway.
 */
export function skipReason(pod: KubePod, drain: DrainOptions, own: { name: string; namespace: string | undefined }, orphan: boolean): string | undefined {
  const { metadata } = pod;
  if (daemonSetOf(pod) !== undefined && !orphan) return 'DaemonSet pod';
  if (metadata.annotations?.['kubernetes.io/config.mirror'] !== undefined) return 'mirror (static) pod';
  if (metadata.name === own.name && (own.namespace === undefined || metadata.namespace === own.namespace)) return "this agent's own pod";
  const excluded = drain.exclude.find((rule) => matchesSelector(rule, metadata.labels));
  return excluded ? `excluded by "${excluded.text}"` : undefined;
}

/** The eviction order: pods matching the first `first` selector, then the next, then the rest (stable within each). */
export function evictionOrder(pods: KubePod[], drain: DrainOptions): KubePod[] {
  const rank = (pod: KubePod): number => {
    const index = drain.first.findIndex((rule) => matchesSelector(rule, pod.metadata.labels));
    return index === -1 ? drain.first.length : index;
  };
  return pods.map((pod, index) => ({ pod, index, rank: rank(pod) })).sort((a, b) => a.rank - b.rank || a.index - b.index).map(({ pod }) => pod);
}

/**
 * The grace period to ask for so the pod's termination ends by `endsBy`: undefined keeps the
 * pod's own when it fits; a longer one is cut to the whole seconds left, at least 1 (0 would
 * be a forced delete that does not wait for the kubelet).
 */
export function graceFor(pod: KubePod, endsBy: number, now: number): number | undefined {
  const own = pod.spec?.terminationGracePeriodSeconds ?? 30;
  const left = Math.max(1, Math.floor((endsBy - now) / 1000));
  return own > left ? left : undefined;
}

/** The PodDisruptionBudget a 429 names (`The disruption budget NAME needs ...`), when it does. */
export function budgetName(causes: string[]): string | undefined {
  for (const cause of causes) {
    const name = /^The disruption budget (\S+) /.exec(cause)?.[1];
    if (name) return name;
  }
  return undefined;
}
