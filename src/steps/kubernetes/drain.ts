import type { KubeClient } from '../../kubernetes/client.js';
import { KubernetesError } from '../../kubernetes/errors.js';
import { daemonSetExists, deletePod, evictionVersion, evictPod, listNodePods, type EvictionVersion, type KubePod } from '../../kubernetes/pods.js';
import { sleep } from '../../lib/backoff.js';
import type { StepContext } from '../types.js';
import { budgetName, daemonSetOf, evictionOrder, graceFor, skipReason } from './drain-pods.js';
import type { DrainOptions } from './options.js';

/** Kept before the step's deadline for the last listing and the result: the drain's own deadline is this much earlier. */
const MARGIN_MS = 2_000;
/**
 * Between rounds of retries (a budget refusing) and checks (pods terminating). kubectl
 * retries each pod every 5 s; a round here asks one pod per refusing budget, so a short
 * round costs a list and a few requests, and a budget's next pod goes soon after the last.
 */
const ROUND_MS = 300;
/**
 * Evictions (or deletes) in flight at once. kubectl drain sends one per pod at once; one at a
 * time, 100 pods at 20 ms each take 2 s before the last is even asked. Ten is client-go's
 * default burst: quick, without a flood the API server's fairness would queue anyway.
 */
export const EVICTIONS_AT_ONCE = 10;

/** How a pod ended: `gone` left before it was asked to; `terminating` was evicted or deleted and is still there. */
export type PodOutcome = 'evicted' | 'deleted' | 'gone' | 'terminating' | 'blocked' | 'failed' | 'skipped';

export interface PodReport {
  /** namespace/name */
  pod: string;
  outcome: PodOutcome;
  /** Why skipped, which budget blocks it, what failed, how a terminating pod was asked to go. */
  reason?: string;
  /** The grace period asked for when the pod's own was cut to fit the deadline. */
  graceSeconds?: number;
}

interface Tracked {
  pod: KubePod;
  report: PodReport | { pod: string; outcome: 'pending'; reason?: string; graceSeconds?: number };
  /** How the API accepted it: evicted or deleted. */
  by?: 'evicted' | 'deleted';
  /** The budget that refused it last. */
  budget?: string;
}

export interface DrainResult {
  pods: PodReport[];
  counts: Partial<Record<PodOutcome, number>>;
  /** What keeps the drain from being complete (blocked, failed, still terminating); undefined when every pod is gone or skipped. */
  unfinished: string | undefined;
}

const podId = (pod: KubePod): string => `${pod.metadata.namespace}/${pod.metadata.name}`;
const open = (tracked: Tracked): boolean => tracked.report.outcome === 'pending' || tracked.report.outcome === 'blocked';

/** One eviction (or delete, near the deadline when asked) of one pod, and what the API said. */
async function ask(client: KubeClient, tracked: Tracked, version: EvictionVersion, endsBy: number, deleting: boolean, signal: AbortSignal): Promise<void> {
  const grace = graceFor(tracked.pod, endsBy, Date.now());
  const id = tracked.report.pod;
  try {
    if (deleting) await deletePod(client, tracked.pod, grace, signal);
    else await evictPod(client, tracked.pod, version, grace, signal);
    tracked.by = deleting ? 'deleted' : 'evicted';
    tracked.report = { pod: id, outcome: 'terminating', reason: deleting ? 'deleted past its budget' : 'evicted', ...(grace === undefined ? {} : { graceSeconds: grace }) };
  } catch (error) {
    if (!(error instanceof KubernetesError)) throw error;
    if (error.status === 404) tracked.report = { pod: id, outcome: 'gone' };
    else if (error.status === 429) {
      tracked.budget = budgetName(error.causes);
      tracked.report = { pod: id, outcome: 'blocked', reason: `PodDisruptionBudget ${tracked.budget ?? '(not named)'}` };
    }
    // Several budgets: the API refuses every eviction of it; only a delete gets it out.
    else if (error.status === 500 && /more than one PodDisruptionBudget/i.test(error.message)) tracked.report = { pod: id, outcome: 'blocked', reason: 'more than one PodDisruptionBudget selects it (the API refuses its eviction)' };
    else tracked.report = { pod: id, outcome: 'failed', reason: error.message };
  }
}

/**
 * Evicts the Node's pods through the Eviction API, retrying those a budget refuses, until
 * each is gone or the step's deadline (less MARGIN_MS) comes; each pod's grace period is cut
 * so its termination ends by then. Never throws for a pod: its report says how it ended.
 */
export async function drainNode(client: KubeClient, nodeName: string, drain: DrainOptions, context: StepContext): Promise<DrainResult> {
  const { signal } = context;
  const endsBy = context.deadline - MARGIN_MS;
  const version = await evictionVersion(client, signal);
  const candidates = await drainCandidates(client, nodeName, drain, context.host.hostname, signal);
  const { skipped } = candidates;
  const ordered: Tracked[] = candidates.ordered.map((pod) => ({ pod, report: { pod: podId(pod), outcome: 'pending' } }));
  context.log.info({ node: nodeName, pods: ordered.length, skipped: skipped.length, eviction: version }, 'draining the node');
  for (;;) {
    const deleting = drain.deleteBlockedWithinMs !== undefined && Date.now() >= endsBy - drain.deleteBlockedWithinMs;
    await eachAtOnce(askingLanes(ordered.filter(open), deleting), EVICTIONS_AT_ONCE, async (lane) => {
      for (const entry of lane) {
        await ask(client, entry, version, endsBy, deleting, signal);
        if (!deleting && entry.report.outcome === 'blocked' && entry.budget !== undefined) break;
      }
    });
    const present = new Set((await listNodePods(client, nodeName, signal)).map((pod) => pod.metadata.uid));
    for (const entry of ordered) {
      if (present.has(entry.pod.metadata.uid)) continue;
      if (entry.report.outcome === 'terminating') entry.report = { ...entry.report, outcome: entry.by!, reason: undefined };
      else if (open(entry)) entry.report = { pod: entry.report.pod, outcome: 'gone' };
    }
    const left = ordered.filter((entry) => open(entry) || entry.report.outcome === 'terminating').length;
    context.progress({ podsLeft: left, podsGone: ordered.filter((entry) => ['evicted', 'deleted', 'gone'].includes(entry.report.outcome)).length });
    const wait = Math.min(ROUND_MS, endsBy - Date.now());
    if (left === 0 || wait <= 0) break;
    await sleep(wait, signal);
  }
  return result(skipped, ordered);
}

/**
 * The round's pods in lanes, in eviction order, asked side by side. A budget that refused a
 * pod before refuses its next pods too until it allows: its pods share one lane, asked in
 * order until the first refusal, so only its first is asked again while it refuses. Every
 * other pod (and every pod once deleting, which bypasses budgets) is a lane of its own.
 */
function askingLanes(entries: Tracked[], deleting: boolean): Tracked[][] {
  const lanes = new Map<string, Tracked[]>();
  for (const entry of entries) {
    const key = !deleting && entry.budget !== undefined ? `budget ${entry.pod.metadata.namespace}/${entry.budget}` : `pod ${entry.pod.metadata.uid}`;
    const lane = lanes.get(key);
    if (lane) lane.push(entry);
    else lanes.set(key, [entry]);
  }
  return [...lanes.values()];
}

/** Runs `work` on each item, at most `limit` at once, starting them in order. */
async function eachAtOnce<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * The Node's pods a drain evicts, in eviction order, and those it skips with why: read
 * only (a list, and a get per DaemonSet), so the dry run shows the same.
 */
export async function drainCandidates(client: KubeClient, nodeName: string, drain: DrainOptions, hostname: string, signal: AbortSignal): Promise<{ ordered: KubePod[]; skipped: PodReport[] }> {
  const own = { name: process.env.POD_NAME ?? hostname, namespace: process.env.POD_NAMESPACE };
  const evicted: KubePod[] = [];
  const skipped: PodReport[] = [];
  const pods = await listNodePods(client, nodeName, signal);
  const orphans = await orphanedPods(client, pods, signal);
  for (const pod of pods) {
    const reason = skipReason(pod, drain, own, orphans.has(pod));
    if (reason) skipped.push({ pod: podId(pod), outcome: 'skipped', reason });
    else evicted.push(pod);
  }
  return { ordered: evictionOrder(evicted, drain), skipped };
}

/** The DaemonSet pods whose DaemonSet is gone, asking once per DaemonSet. */
async function orphanedPods(client: KubeClient, pods: KubePod[], signal: AbortSignal): Promise<Set<KubePod>> {
  const exists = new Map<string, boolean>();
  const orphans = new Set<KubePod>();
  for (const pod of pods) {
    const name = daemonSetOf(pod);
    if (name === undefined) continue;
    const key = `${pod.metadata.namespace}/${name}`;
    if (!exists.has(key)) exists.set(key, await daemonSetExists(client, pod.metadata.namespace, name, signal));
    if (!exists.get(key)) orphans.add(pod);
  }
  return orphans;
}

function result(skipped: PodReport[], ordered: Tracked[]): DrainResult {
  const pods = [...ordered.map(({ report }) => withoutEmpty(report.outcome === 'pending' ? { ...report, outcome: 'blocked' as const, reason: 'not asked before the deadline' } : report)), ...skipped];
  const counts: Partial<Record<PodOutcome, number>> = {};
  for (const pod of pods) counts[pod.outcome] = (counts[pod.outcome] ?? 0) + 1;
  const unfinished = pods.filter((pod) => pod.outcome === 'blocked' || pod.outcome === 'failed' || pod.outcome === 'terminating');
  const described = unfinished.slice(0, 5).map((pod) => `${pod.pod} ${pod.outcome}${pod.reason ? ` (${pod.reason})` : ''}`);
  const more = unfinished.length > 5 ? `, and ${unfinished.length - 5} more` : '';
  return { pods, counts, unfinished: unfinished.length === 0 ? undefined : `${unfinished.length} of ${ordered.length} pods not gone by the deadline: ${described.join(', ')}${more}` };
}

function withoutEmpty(report: PodReport): PodReport {
  return Object.fromEntries(Object.entries(report).filter(([, value]) => value !== undefined)) as unknown as PodReport;
}
