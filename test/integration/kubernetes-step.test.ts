import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { resolveAccess } from '../../src/kubernetes/access.js';
import { KubeClient } from '../../src/kubernetes/client.js';
import { getNode } from '../../src/kubernetes/node.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { StepUndo } from '../../src/daemon/step-undo.js';
import { silentLogger } from '../../src/lib/log.js';
import { noticeId } from '../../src/notice/notice.js';
import { skipReason } from '../../src/plan/kinds.js';
import { kubernetesStep } from '../../src/steps/kubernetes/step.js';
import { findStepType } from '../../src/steps/registry.js';
import { compileConfig } from '../helpers/config.js';
import { freePort } from '../helpers/free-port.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-api-server.js';
import { ScriptedProvider } from '../helpers/scripted-provider.js';
import { testNotice, testStepContext } from '../helpers/step-context.js';
import { until } from '../helpers/until.js';

const TOKEN = 'agent-token';
const USER = 'system:serviceaccount:preemptd:preemptd';

let server: KubeApiServer;
let dir: string;
let kubeconfig: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubernetes-step-'));
  server = await startKubeApiServer({ tokens: { [TOKEN]: USER } });
  kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: TOKEN });
  server.addNode('node-1', { taints: [{ key: 'team', value: 'ml', effect: 'NoSchedule' }] });
});

afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const options = (raw: Record<string, unknown>) => kubernetesStep.schema.parse({ node: 'node-1', kubeconfig, ...raw });

async function runStep(raw: Record<string, unknown>, setup: { timeoutMs?: number; kind?: 'terminate' | 'rebalance'; id?: string } = {}) {
  const notice = testNotice({ kind: setup.kind ?? 'terminate', ...(setup.id ? { id: setup.id } : {}) });
  const { context, dispose } = testStepContext({ timeoutMs: setup.timeoutMs ?? 5000, notice });
  try {
    return await kubernetesStep.run(options(raw), context);
  } finally {
    dispose();
  }
}

describe('the kubernetes step', () => {
  it('cordons, taints with the notice kind under preemptd.io, labels, annotates and records an Event on the Node, keeping taints others put', async () => {
    const detail = await runStep({ cordon: true, taint: true, labels: { 'preemptd.io/interrupted': 'true' }, annotations: { 'preemptd.io/notice-id': 'aws-terminate-1' } });
    const node = server.node('node-1')!;
    expect(node.spec).toEqual({
      unschedulable: true,
      taints: [
        { key: 'team', value: 'ml', effect: 'NoSchedule' },
        { key: 'preemptd.io/notice', value: 'terminate', effect: 'NoSchedule' },
      ],
    });
    expect(node.metadata.labels).toMatchObject({ 'preemptd.io/interrupted': 'true' });
    expect(node.metadata.annotations).toMatchObject({ 'preemptd.io/notice-id': 'aws-terminate-1' });
    const [event] = server.events();
    expect(event).toMatchObject({ involvedObject: { kind: 'Node', name: 'node-1', uid: node.metadata.uid }, reason: 'PreemptdNotice', type: 'Warning' });
    expect(String(event!.message)).toContain('terminate notice from aws');
    expect(detail).toMatchObject({ node: 'node-1', cordoned: true, taint: 'preemptd.io/notice=terminate:NoSchedule', event: event!.metadata.name });

    await runStep({ taint: { effect: 'NoSchedule' }, event: false }, { kind: 'rebalance' });
    expect(server.node('node-1')!.spec!.taints).toEqual([
      { key: 'team', value: 'ml', effect: 'NoSchedule' },
      { key: 'preemptd.io/notice', value: 'rebalance', effect: 'NoSchedule' },
    ]);
  });

  it('takes the Node name from NODE_NAME, and fails naming what to set when there is none', async () => {
    const saved = process.env.NODE_NAME;
    try {
      process.env.NODE_NAME = 'node-1';
      await runStep({ node: undefined, cordon: true, event: false });
      expect(server.node('node-1')!.spec!.unschedulable).toBe(true);
      delete process.env.NODE_NAME;
      await expect(runStep({ node: undefined, cordon: true })).rejects.toThrow('no Node name: set node: in the step, or NODE_NAME in the pod');
    } finally {
      if (saved === undefined) delete process.env.NODE_NAME;
      else process.env.NODE_NAME = saved;
    }
  });

  it('fails with what to fix: a refused token (401), a missing RBAC rule (403, verb and resource), an API that is down or too slow', async () => {
    server.setTokens({ other: USER });
    await expect(runStep({ cordon: true })).rejects.toThrow(/refused the credentials from kubeconfig .* \(401 Unauthorized\): the token is missing, wrong or expired/);

    server.setTokens({ [TOKEN]: USER });
    server.deny('patch', 'nodes');
    await expect(runStep({ cordon: true })).rejects.toThrow(
      `nodes "node-1" is forbidden: User "${USER}" cannot patch resource "nodes" in API group "" at the cluster scope (403 Forbidden): grant the agent's service account "patch" on "nodes"`,
    );
    server.allow('patch', 'nodes');
    server.deny('create', 'events');
    await expect(runStep({ event: true })).rejects.toThrow(`grant the agent's service account "create" on "events"`);

    server.latencyMs = 5000;
    await expect(runStep({ cordon: true }, { timeoutMs: 200 })).rejects.toThrow(/did not answer GET \/api\/v1\/nodes\/node-1 before the step's deadline/);
    server.latencyMs = 0;

    const port = await freePort();
    await writeFile(join(dir, 'down'), JSON.stringify({ clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${port}` } }], users: [{ name: 'u', user: { token: TOKEN } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }));
    await expect(runStep({ kubeconfig: join(dir, 'down'), cordon: true })).rejects.toThrow(`the Kubernetes API at https://127.0.0.1:${port} is unreachable (ECONNREFUSED)`);
  });

  it('check reads and asks (SelfSubjectAccessReview) without changing anything, naming a permission not granted', async () => {
    server.deny('create', 'events');
    const before = server.store.resourceVersion;
    const { context } = { context: { signal: AbortSignal.timeout(5000), log: undefined as never, instance: Promise.resolve(undefined) } };
    const results = await kubernetesStep.check(options({ cordon: true, taint: true }), context);
    expect(results).toEqual([
      expect.objectContaining({ what: 'Kubernetes Node node-1', ok: true }),
      { what: 'permission get nodes', ok: true, reason: 'granted' },
      { what: 'permission patch nodes', ok: true, reason: 'granted' },
      { what: 'permission create events', ok: false, reason: `not granted: add verb "create" on "events" to the agent's (Cluster)Role` },
    ]);
    expect(server.store.resourceVersion).toBe(before);
    expect(server.requests.map((recorded) => recorded.method)).not.toContain('PATCH');

    server.setTokens({});
    const [refused] = await kubernetesStep.check(options({ cordon: true }), context);
    expect(refused).toMatchObject({ ok: false, reason: expect.stringContaining('401 Unauthorized') });
  });

  it.each([[{ cordon: true }], [{ taint: true }], [{ taint: { key: 'example.com/going', effect: 'NoExecute' }, drain: true, labels: { a: 'b' } }]])('is destructive when it %j: an advisory notice runs it only when its on: names the kind', (raw) => {
    const step = { type: 'kubernetes', options: kubernetesStep.schema.parse(raw) };
    expect(skipReason({ ...step, on: null }, { kind: 'rebalance' }, findStepType)).toContain('advisory');
    expect(skipReason({ ...step, on: ['rebalance'] }, { kind: 'rebalance' }, findStepType)).toBeUndefined();
  });

  it('is not destructive when it only labels, annotates and records an Event: it runs for an advisory notice without on:', () => {
    const options = kubernetesStep.schema.parse({ labels: { 'preemptd.io/rebalance': 'true' }, annotations: { a: 'b' }, event: true });
    expect(skipReason({ type: 'kubernetes', options, on: null }, { kind: 'rebalance' }, findStepType)).toBeUndefined();
    expect(skipReason({ type: 'kubernetes', options, on: null }, { kind: 'terminate' }, findStepType)).toBeUndefined();
  });

  it('says in the dry run what it would do', () => {
    expect(kubernetesStep.describe(kubernetesStep.schema.parse({ cordon: true, taint: true, labels: { a: 'b' } }))).toBe(
      'node $NODE_NAME (in-cluster service account): cordon it, taint it preemptd.io/notice=<notice kind>:NoSchedule, label it a=b, record an Event on it',
    );
  });

  it('refuses options that would not work, saying what was expected', () => {
    expect(() => kubernetesStep.schema.parse({ taint: { effect: 'Evict' } })).toThrow('expected NoSchedule, PreferNoSchedule or NoExecute');
    expect(() => kubernetesStep.schema.parse({ labels: { 'bad key!': 'x' } })).toThrow('expected a label key such as preemptd.io/notice');
    expect(() => kubernetesStep.schema.parse({ event: false })).toThrow('expected something to do: cordon, taint, labels, annotations, event or drain');
    expect(() => kubernetesStep.schema.parse({ kubeconfig: 'relative/config' })).toThrow('expected an absolute file path');
  });
});

describe('undo', () => {
  const undo = (raw: Record<string, unknown>, noticeId: string | undefined) =>
    kubernetesStep.undo(options(raw), { noticeId, log: pino({ level: 'silent' }), signal: AbortSignal.timeout(5000) });
  const marking = { cordon: true, taint: true, labels: { 'preemptd.io/interrupted': 'true', 'preemptd.io/zone': 'a' }, annotations: { 'preemptd.io/why': 'spot' }, event: false };

  it('takes back, once every notice it was made for is withdrawn, only what preemptd added and nobody changed since', async () => {
    await runStep(marking, { id: 'notice-a' });
    await runStep(marking, { id: 'notice-b', kind: 'rebalance' });
    // someone else sets one of our labels to their own value: theirs now, it stays
    server.store.replace('nodes', { ...server.node('node-1')!, metadata: { ...server.node('node-1')!.metadata, labels: { ...server.node('node-1')!.metadata.labels, 'preemptd.io/zone': 'b' } } });

    await undo(marking, 'notice-a');
    expect(server.node('node-1')!.spec!.unschedulable).toBe(true);
    await undo(marking, 'unrelated-notice');
    expect(server.node('node-1')!.spec!.unschedulable).toBe(true);

    await undo(marking, 'notice-b');
    const node = server.node('node-1')!;
    expect(node.spec).toEqual({ taints: [{ key: 'team', value: 'ml', effect: 'NoSchedule' }] });
    expect(node.metadata.labels).not.toHaveProperty('preemptd.io/interrupted');
    expect(node.metadata.labels).toMatchObject({ 'preemptd.io/zone': 'b' });
    expect(node.metadata.annotations ?? {}).toEqual({});
  });

  it('leaves a cordon someone else made before the notice', async () => {
    server.store.replace('nodes', { ...server.node('node-1')!, spec: { ...server.node('node-1')!.spec, unschedulable: true } });
    await runStep({ cordon: true, event: false }, { id: 'notice-a' });
    await undo({ cordon: true, event: false }, 'notice-a');
    expect(server.node('node-1')!.spec!.unschedulable).toBe(true);
    expect(server.node('node-1')!.metadata.annotations ?? {}).toEqual({});
  });

  it('at start-up clears what an earlier boot left, and keeps what this boot did', async () => {
    await runStep(marking, { id: 'notice-a' });
    const before = server.store.resourceVersion;
    await undo(marking, undefined);
    expect(server.store.resourceVersion).toBe(before);

    const node = server.node('node-1')!;
    const record = JSON.parse(node.metadata.annotations!['preemptd.io/added']!);
    server.store.replace('nodes', { ...node, metadata: { ...node.metadata, annotations: { ...node.metadata.annotations, 'preemptd.io/added': JSON.stringify({ ...record, bootId: 'an-earlier-boot' }) } } });
    await undo(marking, undefined);
    expect(server.node('node-1')!.spec).toEqual({ taints: [{ key: 'team', value: 'ml', effect: 'NoSchedule' }] });
  });
});

describe('in the agent', () => {
  it('a notice cordons and taints the node; its withdrawal uncordons it and removes the taint', async () => {
    const provider = new ScriptedProvider();
    const config = compileConfig({ stateDir: join(dir, 'state'), steps: [{ name: 'mark-node', kubernetes: { node: 'node-1', kubeconfig, cordon: true, taint: true } }] }, { file: undefined });
    const daemon = createDaemon({ config, log: silentLogger(), provider });
    const undo = new StepUndo({ daemon, config, log: silentLogger() });
    const running = daemon.run();
    try {
      await until(() => provider.watching);
      const id = noticeId('aws', 'terminate', 'kubernetes-agent-test');
      provider.notice(testNotice({ id }));
      await until(() => server.node('node-1')!.spec!.unschedulable === true && server.events().length === 1);
      expect(server.node('node-1')!.spec!.taints).toContainEqual({ key: 'preemptd.io/notice', value: 'terminate', effect: 'NoSchedule' });

      provider.emit({ type: 'withdrawn', noticeId: id, reason: 'cancelled' });
      await until(() => server.node('node-1')!.spec!.unschedulable === undefined);
      expect(server.node('node-1')!.spec!.taints).toEqual([{ key: 'team', value: 'ml', effect: 'NoSchedule' }]);
    } finally {
      await daemon.stop();
      await running;
      await undo.close();
    }
  });
});

describe('in-cluster API access', () => {
  it('uses KUBERNETES_SERVICE_HOST/PORT and the mounted CA, and re-reads the token file as it rotates', async () => {
    const accountDir = join(dir, 'serviceaccount');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(accountDir);
    await writeFile(join(accountDir, 'ca.crt'), server.caCertificate);
    await writeFile(join(accountDir, 'token'), TOKEN);
    const port = new URL(server.url).port;
    const access = await resolveAccess({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }, serviceAccountDir: accountDir });
    const client = new KubeClient(access);
    const signal = AbortSignal.timeout(5000);
    expect((await getNode(client, 'node-1', signal)).metadata.name).toBe('node-1');

    server.setTokens({ rotated: USER });
    await writeFile(join(accountDir, 'token'), 'rotated\n');
    expect((await getNode(client, 'node-1', signal)).metadata.name).toBe('node-1');
    expect(server.requests.at(-1)!.authorization).toBe('Bearer rotated');

    await rm(join(accountDir, 'token'));
    await expect(getNode(client, 'node-1', signal)).rejects.toThrow(`no token at ${join(accountDir, 'token')} (ENOENT): mount a service-account token`);
  });

  it('says when it is not in a pod and no kubeconfig is given', async () => {
    await expect(resolveAccess({ env: {} })).rejects.toThrow('not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)');
  });
});
