/**
 * Pod termination and the Eviction API as the API server and kubelet behave: a delete sets
 * deletionTimestamp and the pod goes away when its process stops (or its grace runs out); an
 * eviction checks the one PodDisruptionBudget that selects the pod first.
 */
import { matchesLabelSelector } from './selectors.js';
import { ApiError, statusBody } from './status.js';
import type { KubeObject, ObjectStore } from './store.js';

type PdbSpec = { selector?: Parameters<typeof matchesLabelSelector>[0]; minAvailable?: number | string; maxUnavailable?: number | string };

export class PodLifecycle {
  /** How long each pod's process takes to stop after SIGTERM, by uid (the kubelet's part). */
  readonly stopsAfterMs = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly store: ObjectStore) {}

  /** DELETE with an optional gracePeriodSeconds; a shorter grace on a terminating pod cuts it short. */
  delete(pod: KubeObject, gracePeriodSeconds: number | undefined): KubeObject {
    const uid = pod.metadata.uid!;
    const grace = gracePeriodSeconds ?? Number(pod.spec?.terminationGracePeriodSeconds ?? 30);
    const phase = pod.status?.phase;
    if (grace <= 0 || !pod.spec?.nodeName || phase === 'Succeeded' || phase === 'Failed') return this.finish(pod);
    const current = pod.metadata.deletionGracePeriodSeconds;
    if (current !== undefined && current <= grace) return pod;
    pod.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    pod.metadata.deletionGracePeriodSeconds = grace;
    this.store.replace('pods', pod);
    clearTimeout(this.timers.get(uid));
    const stopsAfter = Math.min(this.stopsAfterMs.get(uid) ?? 0, grace * 1000);
    this.timers.set(uid, setTimeout(() => this.finish(pod), stopsAfter));
    return pod;
  }

  private finish(pod: KubeObject): KubeObject {
    clearTimeout(this.timers.get(pod.metadata.uid!));
    this.timers.delete(pod.metadata.uid!);
    const stored = this.store.get('pods', pod.metadata.namespace, pod.metadata.name);
    return stored && stored.metadata.uid === pod.metadata.uid ? this.store.remove('pods', stored) : pod;
  }

  stop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** POST pods/NAME/eviction: 201 when the pod may go, 429 while its budget allows no disruption, 500 under several budgets. */
  evict(pod: KubeObject, gracePeriodSeconds: number | undefined): object {
    const phase = pod.status?.phase;
    const ignoresBudget = phase === 'Succeeded' || phase === 'Failed' || phase === 'Pending' || pod.metadata.deletionTimestamp !== undefined;
    if (!ignoresBudget) {
      const budgets = this.store.list('poddisruptionbudgets', pod.metadata.namespace).filter((pdb) => matchesLabelSelector((pdb.spec as PdbSpec).selector, pod.metadata.labels));
      if (budgets.length > 1) throw new ApiError(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.');
      const budget = budgets[0];
      if (budget) {
        const status = this.budgetStatus(budget);
        if (status.disruptionsAllowed <= 0) {
          throw new ApiError(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget.", {
            causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${budget.metadata.name} needs ${status.desiredHealthy} healthy pods and has ${status.currentHealthy} currently` }],
          });
        }
      }
    }
    this.delete(pod, gracePeriodSeconds);
    return statusBody(201, '', '');
  }

  /** What the disruption controller would publish: expected pods are those the budget selects now. */
  budgetStatus(budget: KubeObject): { currentHealthy: number; desiredHealthy: number; expectedPods: number; disruptionsAllowed: number } {
    const spec = budget.spec as PdbSpec;
    const selected = this.store.list('pods', budget.metadata.namespace).filter((pod) => matchesLabelSelector(spec.selector, pod.metadata.labels));
    const expectedPods = selected.length;
    const currentHealthy = selected.filter((pod) => pod.status?.phase === 'Running' && !pod.metadata.deletionTimestamp).length;
    const scaled = (value: number | string): number => (typeof value === 'number' ? value : Math.ceil((expectedPods * Number.parseInt(value, 10)) / 100));
    const desiredHealthy = spec.maxUnavailable !== undefined ? Math.max(0, expectedPods - scaled(spec.maxUnavailable)) : scaled(spec.minAvailable ?? 0);
    return { currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed: Math.max(0, currentHealthy - desiredHealthy) };
  }
}
