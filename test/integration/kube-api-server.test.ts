import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-api-server.js';
import { until } from '../helpers/until.js';

/**
 * The fake API server is only worth its tests if an independent client agrees with it: the real
 * kubectl (shipped with google-cloud-cli here) gets, cordons, taints, labels and drains against it.
 */

const run = promisify(execFile);
const TOKEN = 'test-token';
const USER = 'system:serviceaccount:kube-system:preemptd';

let server: KubeApiServer;
let dir: string;
let kubeconfig: string;

async function kubectl(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], { env: { ...process.env, HOME: dir }, timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

/** A raw request to the server, for what kubectl hides: status codes and Status bodies. */
function call(method: string, path: string, options: { token?: string; body?: unknown; contentType?: string } = {}): Promise<{ status: number; body: any; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? '' : JSON.stringify(options.body);
    const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/json', 'content-length': String(Buffer.byteLength(payload)) };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const req = request(`${server.url}${path}`, { method, headers, ca: server.caCertificate }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text, body: text.startsWith('{') ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kube-api-'));
  server = await startKubeApiServer({ tokens: { [TOKEN]: USER } });
  kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: TOKEN });
  server.addNode('node-1');
  server.addNode('node-2', { labels: { 'node-role.kubernetes.io/worker': '' } });
});

afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('kubectl against the fake API server', () => {
  it('gets nodes as a table, cordons, taints and labels with the patches kubectl sends, and undoes them', async () => {
    const listed = await kubectl('get', 'nodes');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nnode-1\s+Ready\s+<none>\s+\S+\s+v1\.32\.0\nnode-2\s+Ready\s+worker\s/);

    expect((await kubectl('cordon', 'node-1')).stdout).toContain('node/node-1 cordoned');
    expect((await kubectl('taint', 'nodes', 'node-1', 'preemptd.io/notice=termination:NoSchedule')).stdout).toContain('node/node-1 tainted');
    expect((await kubectl('label', 'node', 'node-1', 'preemptd.io/draining=true')).stdout).toContain('node/node-1 labeled');
    expect((await kubectl('annotate', 'node', 'node-1', 'preemptd.io/added=x')).stdout).toContain('node/node-1 annotated');
    expect((await kubectl('get', 'nodes', 'node-1')).stdout).toMatch(/node-1\s+Ready,SchedulingDisabled/);

    const node = server.node('node-1')!;
    expect(node.spec).toEqual({ unschedulable: true, taints: [{ key: 'preemptd.io/notice', value: 'termination', effect: 'NoSchedule' }] });
    expect(node.metadata.labels).toMatchObject({ 'preemptd.io/draining': 'true' });
    expect(node.metadata.annotations).toEqual({ 'preemptd.io/added': 'x' });
    const patches = server.requests.filter((recorded) => recorded.method === 'PATCH').map((recorded) => recorded.contentType);
    // cordon and taint send strategic merge patches, label and annotate JSON merge patches
    expect(patches).toEqual(['application/strategic-merge-patch+json', 'application/strategic-merge-patch+json', 'application/merge-patch+json', 'application/merge-patch+json']);

    expect((await kubectl('taint', 'nodes', 'node-1', 'preemptd.io/notice-')).code).toBe(0);
    expect((await kubectl('label', 'node', 'node-1', 'preemptd.io/draining-')).code).toBe(0);
    expect((await kubectl('uncordon', 'node-1')).stdout).toContain('node/node-1 uncordoned');
    expect(server.node('node-1')!.spec).toEqual({});
    expect(server.node('node-1')!.metadata.labels).not.toHaveProperty('preemptd.io/draining');
  });

  it('drains a node: DaemonSet pods ignored, the rest evicted through policy/v1 while the budget allows, each waited for', async () => {
    server.addDaemonSet('kube-system', 'agent');
    server.addPod({ name: 'agent-1', namespace: 'kube-system', nodeName: 'node-1', owner: { kind: 'DaemonSet', name: 'agent' } });
    for (const name of ['web-1', 'web-2']) server.addPod({ name, nodeName: 'node-1', labels: { app: 'web' }, owner: { kind: 'ReplicaSet', name: 'web' }, stopsAfterMs: 300 });
    server.addPod({ name: 'elsewhere', nodeName: 'node-2', owner: { kind: 'ReplicaSet', name: 'other' } });
    server.addPdb('default', 'web', { selector: { matchLabels: { app: 'web' } }, maxUnavailable: 1 });

    const drained = await kubectl('drain', 'node-1', '--ignore-daemonsets', '--timeout=30s');
    expect(drained.stderr).toContain('Warning: ignoring DaemonSet-managed Pods: kube-system/agent-1');
    expect(drained.stdout).toContain('node/node-1 drained');
    expect(drained.code).toBe(0);
    expect(server.pod('default', 'web-1')).toBeUndefined();
    expect(server.pod('kube-system', 'agent-1')).toBeDefined();
    expect(server.pod('default', 'elsewhere')).toBeDefined();
    const evictions = server.requests.filter((recorded) => recorded.path.endsWith('/eviction'));
    expect(evictions.map((recorded) => (recorded.body as { apiVersion: string }).apiVersion)).toContain('policy/v1');
    // one at a time: at least one eviction was refused (429) and retried while another pod terminated
    expect(evictions.length).toBeGreaterThan(2);
    expect(drained.stderr).toContain("Cannot evict pod as it would violate the pod's disruption budget.");
  });

  it('reports a drain that cannot finish within --timeout', async () => {
    server.addPod({ name: 'guarded', nodeName: 'node-1', labels: { app: 'db' }, owner: { kind: 'StatefulSet', name: 'db' } });
    server.addPdb('default', 'db', { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 });
    const drained = await kubectl('drain', 'node-1', '--ignore-daemonsets', '--timeout=2s');
    expect(drained.code).not.toBe(0);
    expect(drained.stderr).toMatch(/global timeout reached: 2s/);
    expect(server.pod('default', 'guarded')).toBeDefined();
  });

  it('drains with policy/v1beta1 evictions on a server without policy/v1', async () => {
    await server.close();
    server = await startKubeApiServer({ evictionVersions: ['v1beta1'], tokens: { [TOKEN]: USER } });
    kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: TOKEN });
    server.addNode('node-1');
    server.addPod({ name: 'web-1', nodeName: 'node-1', owner: { kind: 'ReplicaSet', name: 'web' } });
    const drained = await kubectl('drain', 'node-1', '--timeout=20s');
    expect(drained.stdout).toContain('node/node-1 drained');
    expect(server.requests.find((recorded) => recorded.path.endsWith('/eviction'))?.body).toMatchObject({ apiVersion: 'policy/v1beta1' });
  });

  it('answers kubectl with 401 for a wrong token and 403 naming the verb and resource RBAC lacks', async () => {
    server.setTokens({ rotated: USER });
    const unauthorized = await kubectl('get', 'nodes');
    expect(unauthorized.code).not.toBe(0);
    expect(unauthorized.stderr).toContain('You must be logged in to the server');

    server.setTokens({ [TOKEN]: USER });
    server.deny('patch', 'nodes');
    const forbidden = await kubectl('cordon', 'node-1');
    // kubectl cordon reports a failed patch but exits 0
    expect(forbidden.stderr).toContain(`nodes "node-1" is forbidden: User "${USER}" cannot patch resource "nodes" in API group "" at the cluster scope`);
    expect(server.node('node-1')!.spec).not.toHaveProperty('unschedulable');
  });
});

describe('the fake API server itself', () => {
  it('applies JSON patch and merge patch, and refuses a stale resourceVersion with 409', async () => {
    const rv = server.node('node-1')!.metadata.resourceVersion;
    const json = await call('PATCH', '/api/v1/nodes/node-1', { token: TOKEN, contentType: 'application/json-patch+json', body: [{ op: 'test', path: '/metadata/resourceVersion', value: rv }, { op: 'add', path: '/spec/unschedulable', value: true }] });
    expect(json.status).toBe(200);
    expect(json.body.spec.unschedulable).toBe(true);
    const failedTest = await call('PATCH', '/api/v1/nodes/node-1', { token: TOKEN, contentType: 'application/json-patch+json', body: [{ op: 'test', path: '/metadata/resourceVersion', value: rv }] });
    expect(failedTest.status).toBe(422);
    const merge = await call('PATCH', '/api/v1/nodes/node-1', { token: TOKEN, contentType: 'application/merge-patch+json', body: { metadata: { labels: { a: 'b' } }, spec: { unschedulable: null } } });
    expect(merge.body.metadata.labels).toMatchObject({ a: 'b' });
    expect(merge.body.spec).not.toHaveProperty('unschedulable');
    const stale = await call('PATCH', '/api/v1/nodes/node-1', { token: TOKEN, contentType: 'application/merge-patch+json', body: { metadata: { resourceVersion: rv } } });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
  });

  it('watches nodes from a resourceVersion, and answers a compacted one with 410 Expired', async () => {
    const list = await call('GET', '/api/v1/nodes', { token: TOKEN });
    const from = list.body.metadata.resourceVersion as string;
    await call('PATCH', '/api/v1/nodes/node-1', { token: TOKEN, contentType: 'application/merge-patch+json', body: { spec: { unschedulable: true } } });
    const resumed = await call('GET', `/api/v1/nodes?watch=true&resourceVersion=${from}&timeoutSeconds=0&fieldSelector=metadata.name%3Dnode-1`, { token: TOKEN });
    const events = resumed.text.trim().split('\n').map((line) => JSON.parse(line));
    expect(events).toEqual([expect.objectContaining({ type: 'MODIFIED', object: expect.objectContaining({ spec: { unschedulable: true } }) })]);

    server.compactHistory();
    const expired = await call('GET', `/api/v1/nodes?watch=true&resourceVersion=${from}`, { token: TOKEN });
    expect(expired.status).toBe(200);
    expect(JSON.parse(expired.text)).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  });

  it('lists pods by node, terminates a deleted pod only after its grace, and refuses an eviction under two budgets with 500', async () => {
    server.addPod({ name: 'a', nodeName: 'node-1', labels: { app: 'x', tier: 'db' }, stopsAfterMs: 60_000, terminationGracePeriodSeconds: 1 });
    server.addPod({ name: 'b', nodeName: 'node-2' });
    const onNode = await call('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1', { token: TOKEN });
    expect(onNode.body.items.map((pod: { metadata: { name: string } }) => pod.metadata.name)).toEqual(['a']);

    server.addPdb('default', 'x', { selector: { matchLabels: { app: 'x' } }, maxUnavailable: 1 });
    server.addPdb('default', 'db', { selector: { matchLabels: { tier: 'db' } }, maxUnavailable: 1 });
    const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'a', namespace: 'default' } };
    const twoBudgets = await call('POST', '/api/v1/namespaces/default/pods/a/eviction', { token: TOKEN, body: eviction });
    expect(twoBudgets.status).toBe(500);
    expect(twoBudgets.body.message).toBe('This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.');

    const deleted = await call('DELETE', '/api/v1/namespaces/default/pods/a', { token: TOKEN, body: { gracePeriodSeconds: 1 } });
    expect(deleted.body.metadata.deletionGracePeriodSeconds).toBe(1);
    expect(server.pod('default', 'a')?.metadata.deletionTimestamp).toBeDefined();
    await until(() => server.pod('default', 'a') === undefined);
  });

  it('answers SelfSubjectAccessReview from the configured denials without changing anything', async () => {
    server.deny('create', 'pods/eviction');
    const before = server.store.resourceVersion;
    const review = (verb: string, resource: string, subresource?: string) =>
      call('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { token: TOKEN, body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb, resource, ...(subresource ? { subresource } : {}) } } } });
    expect((await review('create', 'pods', 'eviction')).body.status.allowed).toBe(false);
    expect((await review('patch', 'nodes')).body.status.allowed).toBe(true);
    expect(server.store.resourceVersion).toBe(before);
  });
});
