import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { resolveAccess } from '../../src/kubernetes/access.js';
import { KubeClient } from '../../src/kubernetes/client.js';
import { noticeId } from '../../src/notice/notice.js';
import { KubernetesProvider } from '../../src/providers/kubernetes/provider.js';
import { DEFAULT_NODE_SIGNALS } from '../../src/providers/kubernetes/signals.js';
import type { ProviderEvent } from '../../src/providers/types.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-api-server.js';
import { noticeOf, watchRecorder, type WatchRecorder } from '../helpers/provider-watch.js';
import { until } from '../helpers/until.js';

const TOKEN = 'agent-token';
const BOOT = 'boot-1';

let server: KubeApiServer;
let dir: string;
let kubeconfig: string;
let admin: KubeClient;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubernetes-source-'));
  server = await startKubeApiServer({ tokens: { [TOKEN]: 'system:serviceaccount:preemptd:preemptd' } });
  kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: TOKEN });
  server.addNode('node-1');
  admin = new KubeClient(await resolveAccess({ kubeconfig }));
});

afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Changes the Node through the API, as the platform would, so watches see it. */
async function mergeNode(patch: object): Promise<void> {
  await admin.call({ method: 'PATCH', path: '/api/v1/nodes/node-1', body: patch, contentType: 'application/merge-patch+json', needs: { verb: 'patch', resource: 'nodes' }, signal: AbortSignal.timeout(5000) });
}

const provider = (signals = [] as ConstructorParameters<typeof KubernetesProvider>[0]['signals']) => new KubernetesProvider({ node: 'node-1', kubeconfig, signals, bootId: BOOT });

/** Starts the watch; `next()` resolves with the next event, failing the test after 10 s. */
function watching(source: KubernetesProvider, recorder: WatchRecorder) {
  const iterator = source.watch(recorder.context)[Symbol.asyncIterator]();
  // The generator runs only while a next() is pending: keep one pending from the start.
  let pending = iterator.next();
  return {
    next: async (): Promise<ProviderEvent> => {
      const timer = setTimeout(() => recorder.abort(), 10_000);
      const result = await pending;
      clearTimeout(timer);
      pending = iterator.next();
      if (result.done) throw new Error(`the watch ended before the next event; reads: ${JSON.stringify(recorder.reads)}`);
      return result.value;
    },
    /** Stops the watch; the events it still gave before it ended. */
    finish: async (): Promise<ProviderEvent[]> => {
      recorder.abort();
      const rest: ProviderEvent[] = [];
      for (let result = await pending; !result.done; result = await iterator.next()) rest.push(result.value);
      return rest;
    },
  };
}

const signalPatches: Record<string, object> = {
  'karpenter-disrupted': { spec: { taints: [{ key: 'karpenter.sh/disrupted', effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:00Z' }] } },
  'cluster-autoscaler-to-be-deleted': { spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' }] } },
  'aks-vm-event-scheduled': { status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'VMEventScheduled', status: 'True', reason: 'VMEventScheduled', message: 'Reboot scheduled', lastTransitionTime: '2026-01-01T00:00:00Z' }] } },
  'coreweave-pending-preemption': { metadata: { labels: { 'qos.coreweave.cloud/pending-preemption': 'true' } } },
  'kubelet-node-shutdown': { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'node is shutting down', lastTransitionTime: '2026-01-01T00:00:00Z' }] } },
};

describe('provider kubernetes: the own Node as the notice source', () => {
  it.each(DEFAULT_NODE_SIGNALS.map((signal) => [signal.name, signal] as const))('raises a notice when the default signal %s appears on the watched Node', async (name, signal) => {
    const recorder = watchRecorder();
    const watch = watching(provider(), recorder);
    await recorder.readMatching((read) => read.ok);
    await mergeNode(signalPatches[name]!);
    const notice = noticeOf(await watch.next());
    recorder.abort();
    // The signal's own time is its occurrence where the Node gives one; else the first sighting is #1.
    const timed = name === 'karpenter-disrupted' || name === 'aks-vm-event-scheduled' || name === 'kubelet-node-shutdown';
    const occurrence = timed ? '2026-01-01T00:00:00.000Z' : '#1';
    expect(notice).toMatchObject({ provider: 'kubernetes', kind: signal.kind, id: noticeId('kubernetes', signal.kind, `${BOOT}\0node-1\0${name}\0${occurrence}`), reasons: [name] });
    if (timed) expect(notice.deadline?.toISOString()).toBe(new Date(Date.parse('2026-01-01T00:00:00Z') + signal.deadlineMs!).toISOString());
  });

  it('withdraws the notice when the signal goes away, and a configured label signal replaces nothing else', async () => {
    const recorder = watchRecorder();
    const watch = watching(provider([{ name: 'spot-reclaim', label: 'example.com/reclaim', kind: 'preempt', deadlineMs: 60_000 }]), recorder);
    await recorder.readMatching((read) => read.ok);
    await mergeNode({ metadata: { labels: { 'example.com/reclaim': 'soon' } } });
    const notice = noticeOf(await watch.next());
    expect(notice).toMatchObject({ kind: 'preempt', reasons: ['spot-reclaim'] });
    await mergeNode({ metadata: { labels: { 'example.com/reclaim': null } } });
    expect(await watch.next()).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: 'the spot-reclaim signal is gone from Node node-1' });
    recorder.abort();
  });

  it('gives a signal raised again after its withdrawal a new notice id: the next sighting of a label, or the taint\'s new timeAdded', async () => {
    const recorder = watchRecorder();
    const watch = watching(provider([{ name: 'spot-reclaim', label: 'example.com/reclaim', kind: 'preempt', deadlineMs: 60_000 }]), recorder);
    await recorder.readMatching((read) => read.ok);
    const ids: string[] = [];
    for (const round of [1, 2]) {
      await mergeNode({ metadata: { labels: { 'example.com/reclaim': 'soon' } }, spec: { taints: [{ key: 'karpenter.sh/disrupted', effect: 'NoSchedule', timeAdded: `2026-01-0${round}T00:00:00Z` }] } });
      const raised = [noticeOf(await watch.next()), noticeOf(await watch.next())];
      ids.push(...raised.map((notice) => notice.id));
      await mergeNode({ metadata: { labels: { 'example.com/reclaim': null } }, spec: { taints: [] } });
      const withdrawn = [await watch.next(), await watch.next()];
      expect(withdrawn.map((event) => event.type)).toEqual(['withdrawn', 'withdrawn']);
    }
    recorder.abort();
    expect(new Set(ids).size).toBe(4);
    // The defaults come first, then the configured signals.
    expect(ids[2]).toBe(noticeId('kubernetes', 'terminate', `${BOOT}\0node-1\0karpenter-disrupted\x002026-01-02T00:00:00.000Z`));
    expect(ids[3]).toBe(noticeId('kubernetes', 'preempt', `${BOOT}\0node-1\0spot-reclaim\0#2`));
  });

  it('raises a node-deleted terminate notice when the Node object is deleted and no signal had raised one, and withdraws it when the Node is back', async () => {
    const recorder = watchRecorder();
    const watch = watching(provider(), recorder);
    await recorder.readMatching((read) => read.ok);
    await admin.call({ method: 'DELETE', path: '/api/v1/nodes/node-1', needs: { verb: 'delete', resource: 'nodes' }, signal: AbortSignal.timeout(5000) });
    const notice = noticeOf(await watch.next());
    expect(notice).toMatchObject({ provider: 'kubernetes', kind: 'terminate', reasons: ['node-deleted'], raw: { node: 'node-1', signal: 'node-deleted', deleted: true } });
    expect(notice.deadline!.getTime() - notice.detectedAt.getTime()).toBe(30_000);
    expect(recorder.logs.some((line) => String(line.msg) === 'kubernetes node node-1: the Node object was deleted (the node is going away); raising a terminate notice')).toBe(true);
    server.addNode('node-1');
    expect(await watch.next()).toEqual({ type: 'withdrawn', noticeId: notice.id, reason: 'the node-deleted signal is gone from Node node-1' });
    recorder.abort();
  });

  it('keeps the notice a signal raised when the Node is then deleted, and raises no second one', async () => {
    const recorder = watchRecorder();
    const watch = watching(provider(), recorder);
    await recorder.readMatching((read) => read.ok);
    await mergeNode(signalPatches['karpenter-disrupted']!);
    expect(noticeOf(await watch.next()).reasons).toEqual(['karpenter-disrupted']);
    await admin.call({ method: 'DELETE', path: '/api/v1/nodes/node-1', needs: { verb: 'delete', resource: 'nodes' }, signal: AbortSignal.timeout(5000) });
    await until(() => recorder.logs.some((line) => String(line.msg).includes('the Node object was deleted')));
    expect(recorder.logs.find((line) => String(line.msg).includes('the Node object was deleted'))!.msg).toBe(
      'kubernetes node node-1: the Node object was deleted (the node is going away); the notice already raised for karpenter-disrupted stands',
    );
    expect(await watch.finish()).toEqual([]);
  });

  it('lists the Node again when its watch is told 410 Gone, and still sees a signal set meanwhile', async () => {
    const recorder = watchRecorder();
    const watch = watching(provider(), recorder);
    await recorder.readMatching((read) => read.ok);
    const gets = () => server.requests.filter((request) => request.method === 'GET' && request.path === '/api/v1/nodes/node-1').length;
    expect(gets()).toBe(1);
    server.dropWatches();
    await mergeNode({ metadata: { labels: { unrelated: 'x' } } });
    server.compactHistory();
    await mergeNode(signalPatches['karpenter-disrupted']!);
    expect(noticeOf(await watch.next()).reasons).toEqual(['karpenter-disrupted']);
    expect(gets()).toBe(2);
    expect(recorder.logs.some((line) => String(line.msg).includes('410 Gone'))).toBe(true);
    recorder.abort();
  });

  it.each([
    ['a token the server refuses (401)', () => server.setTokens({ other: 'someone' }), /refused the credentials .*401 Unauthorized/],
    ['RBAC that does not grant watch (403)', () => server.deny('get', 'nodes'), /grant the agent's service account "get" on "nodes"/],
    ['a server that is down', () => server.close(), /unreachable \(ECONNREFUSED\)/],
  ])('reports %s as a failed read naming the fix, backs off and keeps trying', async (_what, breakIt, message) => {
    await breakIt();
    const recorder = watchRecorder();
    const source = provider();
    const iterator = source.watch(recorder.context)[Symbol.asyncIterator]();
    const pending = iterator.next();
    const first = await recorder.readMatching((read) => !read.ok);
    expect(first).toMatchObject({ source: 'kubernetes node node-1', ok: false });
    expect(first.error).toMatch(message);
    await recorder.readMatching((read) => !read.ok && read !== first);
    recorder.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
  });
});
