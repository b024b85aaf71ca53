import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { StepFailure } from '../../src/lib/errors.js';
import { hostFacts } from '../../src/lib/host.js';
import { buildEvent } from '../../src/notice/event.js';
import { EVICTIONS_AT_ONCE } from '../../src/steps/kubernetes/drain.js';
import { kubernetesStep } from '../../src/steps/kubernetes/step.js';
import { summarizeEvent } from '../../src/steps/webhook/summary.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-api-server.js';
import { testNotice, testStepContext } from '../helpers/step-context.js';
import { until } from '../helpers/until.js';

const TOKEN = 'agent-token';

let server: KubeApiServer;
let dir: string;
let kubeconfig: string;

async function start(evictionVersions?: Array<'v1' | 'v1beta1'>): Promise<void> {
  server = await startKubeApiServer({ tokens: { [TOKEN]: 'system:serviceaccount:preemptd:preemptd' }, ...(evictionVersions ? { evictionVersions } : {}) });
  kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: TOKEN });
  server.addNode('node-1');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubernetes-drain-'));
  process.env.POD_NAME = 'preemptd-abcde';
  process.env.POD_NAMESPACE = 'preemptd';
});

afterEach(async () => {
  delete process.env.POD_NAME;
  delete process.env.POD_NAMESPACE;
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const options = (drain: unknown) => kubernetesStep.schema.parse({ node: 'node-1', kubeconfig, cordon: true, event: false, drain });

/** Runs the step; a StepFailure's detail comes back too, so a partial drain's report can be read. */
async function drainWith(drain: unknown, timeoutMs: number) {
  const { context, progress, dispose } = testStepContext({ timeoutMs, notice: testNotice() });
  const startedAt = Date.now();
  try {
    const detail = await kubernetesStep.run(options(drain), context);
    return { ok: true, detail: detail as Record<string, unknown>, error: undefined, progress, ms: Date.now() - startedAt, deadline: context.deadline };
  } catch (error) {
    if (!(error instanceof StepFailure)) throw error;
    return { ok: false, detail: error.detail as Record<string, unknown>, error: error.message, progress, ms: Date.now() - startedAt, deadline: context.deadline };
  } finally {
    dispose();
  }
}

const evictions = () => server.requests.filter((request) => request.path.endsWith('/eviction')).map((request) => ({ pod: request.path.split('/')[6], body: request.body as { apiVersion: string; deleteOptions?: { gracePeriodSeconds?: number } } }));

describe('drain', () => {
  it('evicts the pods (policy/v1) in order, skips DaemonSet (not orphans), mirror, its own and excluded pods, retries a budget until it allows, and waits for them to go', async () => {
    await start();
    server.addDaemonSet('kube-system', 'agent');
    server.addPod({ name: 'agent-1', namespace: 'kube-system', nodeName: 'node-1', owner: { kind: 'DaemonSet', name: 'agent' } });
    server.addPod({ name: 'orphan', namespace: 'kube-system', nodeName: 'node-1', owner: { kind: 'DaemonSet', name: 'deleted' }, terminationGracePeriodSeconds: 1 });
    server.addPod({ name: 'kube-proxy-node-1', namespace: 'kube-system', nodeName: 'node-1', annotations: { 'kubernetes.io/config.mirror': 'abc' } });
    server.addPod({ name: 'preemptd-abcde', namespace: 'preemptd', nodeName: 'node-1' });
    server.addPod({ name: 'keep', nodeName: 'node-1', labels: { keep: 'yes' } });
    server.addPod({ name: 'db-0', nodeName: 'node-1', labels: { app: 'db' }, terminationGracePeriodSeconds: 1, stopsAfterMs: 300 });
    server.addPod({ name: 'db-1', nodeName: 'node-1', labels: { app: 'db' }, terminationGracePeriodSeconds: 1, stopsAfterMs: 300 });
    server.addPod({ name: 'web', nodeName: 'node-1', labels: { app: 'web' }, terminationGracePeriodSeconds: 1, stopsAfterMs: 100 });
    server.addPod({ name: 'elsewhere', nodeName: 'node-2' });
    server.addPdb('default', 'db-budget', { selector: { matchLabels: { app: 'db' } }, maxUnavailable: 1 });

    const run = await drainWith({ first: ['app=web'], exclude: ['keep=yes'] }, 20_000);

    expect(run.error).toBeUndefined();
    expect(run.detail.cordoned).toBe(true);
    expect(run.detail.pods).toEqual([
      { pod: 'default/web', outcome: 'evicted' },
      { pod: 'default/db-0', outcome: 'evicted' },
      { pod: 'default/db-1', outcome: 'evicted' },
      { pod: 'kube-system/orphan', outcome: 'evicted' },
      { pod: 'default/keep', outcome: 'skipped', reason: 'excluded by "keep=yes"' },
      { pod: 'kube-system/agent-1', outcome: 'skipped', reason: 'DaemonSet pod' },
      { pod: 'kube-system/kube-proxy-node-1', outcome: 'skipped', reason: 'mirror (static) pod' },
      { pod: 'preemptd/preemptd-abcde', outcome: 'skipped', reason: "this agent's own pod" },
    ]);
    expect(run.detail.drain).toEqual({ evicted: 4, skipped: 4 });
    const asked = evictions();
    expect(asked.slice(0, 3).map((eviction) => eviction.pod)).toEqual(['web', 'db-0', 'db-1']);
    // db-1 was refused (429) while db-0 terminated, and asked again.
    expect(asked.filter((eviction) => eviction.pod === 'db-1').length).toBeGreaterThan(1);
    expect(asked.every((eviction) => eviction.body.apiVersion === 'policy/v1')).toBe(true);
    for (const name of ['web', 'db-0', 'db-1']) expect(server.pod('default', name)).toBeUndefined();
    expect(server.pod('default', 'keep')).toBeDefined();
    expect(server.pod('default', 'elsewhere')).toBeDefined();
    expect(run.progress.at(-1)).toEqual({ podsLeft: 0, podsGone: 4 });
  });

  it(`sends up to ${EVICTIONS_AT_ONCE} evictions at once, not one at a time`, async () => {
    await start();
    for (let index = 0; index < EVICTIONS_AT_ONCE + 2; index++) server.addPod({ name: `pod-${String(index).padStart(2, '0')}`, nodeName: 'node-1', terminationGracePeriodSeconds: 1 });
    // Each eviction is answered after 2 s: one at a time, the second would come only then.
    server.latencyOf = (request) => (request.path.endsWith('/eviction') ? 2000 : 0);
    const running = drainWith(true, 30_000);
    await until(() => evictions().length >= EVICTIONS_AT_ONCE);
    // The first ten in eviction order (pods list by name); they may arrive in any order.
    const first = Array.from({ length: EVICTIONS_AT_ONCE }, (_, index) => `pod-${String(index).padStart(2, '0')}`);
    expect(evictions().map((eviction) => eviction.pod).sort()).toEqual(first);
    const run = await running;
    expect(run.detail.drain).toEqual({ evicted: EVICTIONS_AT_ONCE + 2 });
    expect(evictions()).toHaveLength(EVICTIONS_AT_ONCE + 2);
  });

  it('cuts each grace period to end before the deadline, and reports by the deadline the pods a budget blocks', async () => {
    await start();
    server.addPod({ name: 'slow', nodeName: 'node-1', terminationGracePeriodSeconds: 600, stopsAfterMs: 600_000 });
    server.addPod({ name: 'quick', nodeName: 'node-1', terminationGracePeriodSeconds: 1 });
    server.addPod({ name: 'guarded', nodeName: 'node-1', labels: { app: 'guarded' } });
    server.addPod({ name: 'guarded-2', nodeName: 'node-1', labels: { app: 'guarded' } });
    server.addPdb('default', 'guarded-budget', { selector: { matchLabels: { app: 'guarded' } }, minAvailable: 2 });

    const run = await drainWith(true, 6_000);

    expect(run.ok).toBe(false);
    expect(Date.now()).toBeLessThan(run.deadline);
    expect(run.error).toBe('drain of node node-1: 2 of 4 pods not gone by the deadline: default/guarded blocked (PodDisruptionBudget guarded-budget), default/guarded-2 blocked (PodDisruptionBudget guarded-budget)');
    // While the budget refuses, only its first pod is asked again each round.
    expect(evictions().filter((eviction) => eviction.pod === 'guarded').length).toBeGreaterThan(2);
    expect(evictions().filter((eviction) => eviction.pod === 'guarded-2').length).toBe(1);
    const pods = run.detail.pods as Array<Record<string, unknown>>;
    const slow = pods.find((pod) => pod.pod === 'default/slow')!;
    // Asked with the whole seconds left before the drain's own deadline, not its 600 s: the kubelet stops it by then.
    expect(slow).toMatchObject({ outcome: 'evicted' });
    expect(server.pod('default', 'slow')).toBeUndefined();
    const grace = evictions().find((eviction) => eviction.pod === 'slow')!.body.deleteOptions!.gracePeriodSeconds!;
    expect(grace).toBe(slow.graceSeconds);
    expect(grace).toBeGreaterThanOrEqual(1);
    expect(grace).toBeLessThanOrEqual(4);
    expect(pods.find((pod) => pod.pod === 'default/quick')).toEqual({ pod: 'default/quick', outcome: 'evicted' });
    expect(evictions().find((eviction) => eviction.pod === 'quick')!.body.deleteOptions).toBeUndefined();
    expect(server.pod('default', 'guarded')).toBeDefined();

    const summary = summarizeEvent(buildEvent('plan.finished', testNotice(), hostFacts(), null, [{ name: 'drain', type: 'kubernetes', status: 'failed', ms: 4000, error: run.error!, detail: run.detail }]));
    expect(summary.steps[0]!.text).toContain(`; pods: default/guarded blocked (PodDisruptionBudget guarded-budget); default/guarded-2 blocked (PodDisruptionBudget guarded-budget); default/quick evicted; default/slow evicted`);
  });

  it('deletes pods a budget still blocks near the deadline when deleteBlockedWithin says so, and reports a pod under several budgets', async () => {
    await start();
    server.addPod({ name: 'guarded', nodeName: 'node-1', labels: { app: 'guarded' } });
    server.addPdb('default', 'guarded-budget', { selector: { matchLabels: { app: 'guarded' } }, minAvailable: 1 });
    server.addPod({ name: 'twice', nodeName: 'node-1', labels: { app: 'twice' } });
    server.addPdb('default', 'twice-a', { selector: { matchLabels: { app: 'twice' } }, maxUnavailable: 1 });
    server.addPdb('default', 'twice-b', { selector: { matchLabels: { app: 'twice' } }, maxUnavailable: 1 });

    const blocked = await drainWith(true, 4_000);
    expect(blocked.detail.pods).toEqual([
      { pod: 'default/guarded', outcome: 'blocked', reason: 'PodDisruptionBudget guarded-budget' },
      { pod: 'default/twice', outcome: 'blocked', reason: 'more than one PodDisruptionBudget selects it (the API refuses its eviction)' },
    ]);

    const deleted = await drainWith({ deleteBlockedWithin: '2s' }, 6_000);
    expect(deleted.error).toBeUndefined();
    expect(deleted.detail.pods).toEqual([
      { pod: 'default/guarded', outcome: 'deleted', graceSeconds: 1 },
      { pod: 'default/twice', outcome: 'deleted', graceSeconds: 1 },
    ]);
    expect(server.requests.filter((request) => request.method === 'DELETE').map((request) => request.path)).toEqual(['/api/v1/namespaces/default/pods/guarded', '/api/v1/namespaces/default/pods/twice']);
  });

  it('evicts through policy/v1beta1 on a server without policy/v1', async () => {
    await start(['v1beta1']);
    server.addPod({ name: 'web', nodeName: 'node-1', terminationGracePeriodSeconds: 1 });
    const run = await drainWith(true, 10_000);
    expect(run.detail.pods).toEqual([{ pod: 'default/web', outcome: 'evicted' }]);
    expect(evictions().map((eviction) => eviction.body.apiVersion)).toEqual(['policy/v1beta1']);
  });

  it('check asks for the pods permissions; the dry run describes the order; bad options are refused saying what was expected', async () => {
    await start();
    server.deny('create', 'pods/eviction');
    const results = await kubernetesStep.check(options({ deleteBlockedWithin: '10s' }), { signal: AbortSignal.timeout(5000), log: undefined as never, instance: Promise.resolve(undefined) });
    expect(results.slice(-4)).toEqual([
      { what: 'permission list pods', ok: true, reason: 'granted' },
      { what: 'permission get daemonsets', ok: true, reason: 'granted' },
      { what: 'permission create pods/eviction', ok: false, reason: `not granted: add verb "create" on "pods/eviction" to the agent's (Cluster)Role` },
      { what: 'permission delete pods', ok: true, reason: 'granted' },
    ]);
    expect(kubernetesStep.describe(options({ first: ['app=web', 'tier!=db'], exclude: ['keep'], deleteBlockedWithin: '10s' }))).toBe(
      `node node-1 (kubeconfig ${kubeconfig}): cordon it, drain it: evict (Eviction API, retried while a PodDisruptionBudget refuses) its pods first pods matching "app=web", then "tier!=db", then the rest, except DaemonSet pods, mirror pods, this agent's own pod, pods matching "keep"; each pod's grace period cut to end before the deadline; pods a budget still refuses 10s before the deadline are deleted`,
    );
    expect(kubernetesStep.defaultTimeoutMs(options(true))).toBe(120_000);
    const refused = (raw: Record<string, unknown>) => kubernetesStep.schema.safeParse({ node: 'node-1', event: false, ...raw }).error?.issues.map((issue) => issue.message);
    expect(refused({ drain: true })).toEqual(['drain needs cordon: true (or a NoSchedule/NoExecute taint), or the evicted pods may be scheduled back onto this node']);
    expect(refused({ cordon: true, drain: { first: ['app in (web)'] } })).toEqual(['"app in (web)" in the label selector "app in (web)" is not key, !key, key=value or key!=value']);
    expect(refused({ taint: true, drain: true })).toBeUndefined();
  });
});
