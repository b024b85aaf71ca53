import { join } from 'node:path';
import { beforeEach, expect, test } from '@jest/globals';
import { resolveAccess } from '../../src/kubernetes/access.js';
import { KubeClient } from '../../src/kubernetes/client.js';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import { compileConfig } from '../helpers/config.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-api-server.js';
import { TestResources } from '../helpers/resources.js';
import { until } from '../helpers/until.js';

// The Node watched beside a cloud's metadata service (kubernetes.watchNode): the metadata
// simulator and the loopback API server together, one daemon watching both.
const TOKEN = 'agent-token';
const resources = new TestResources('preemptd-k8s-alongside-');
let server: KubeApiServer;
let admin: KubeClient;
let kubeconfig: string;

beforeEach(async () => {
  server = await startKubeApiServer({ tokens: { [TOKEN]: 'system:serviceaccount:preemptd:preemptd', admin: 'admin' } });
  resources.defer(() => server.close());
  server.addNode('node-1');
  kubeconfig = await server.writeKubeconfig(join(resources.tempDir(), 'kubeconfig'), { token: TOKEN });
  admin = new KubeClient(await resolveAccess({ kubeconfig: await server.writeKubeconfig(join(resources.tempDir(), 'admin'), { token: 'admin' }) }));
});

const RECLAIM = 'qos.coreweave.cloud/pending-preemption';

async function label(value: string | null): Promise<void> {
  const body = { metadata: { labels: { [RECLAIM]: value } } };
  await admin.call({ method: 'PATCH', path: '/api/v1/nodes/node-1', body, contentType: 'application/merge-patch+json', needs: { verb: 'patch', resource: 'nodes' }, signal: AbortSignal.timeout(5000) });
}

test('an AWS notice and the Node\'s signal each run their plan under their own id; the Node\'s withdrawal leaves the AWS notice; the signal raised again runs the plan again; health reports each source', async () => {
  const metadata = await resources.simulator({ provider: 'aws' });
  const hooks = await resources.receiver({ status: 204 });
  const daemon: Daemon = createDaemon({
    config: compileConfig(
      {
        provider: 'aws',
        metadataUrl: metadata.url,
        pollInterval: '100ms',
        stateDir: resources.tempDir(),
        kubernetes: { node: 'node-1', kubeconfig, watchNode: true },
        steps: [{ name: 'tell', webhook: { url: hooks.url('/notice') } }],
      },
      { file: undefined },
    ),
    log: silentLogger(),
  });
  void resources.runDaemon(daemon);
  const finished: string[] = [];
  daemon.on('planFinished', (notice) => finished.push(`${notice.provider} ${notice.kind} ${notice.id}`));
  const withdrawn: string[] = [];
  daemon.on('withdrawn', (id) => withdrawn.push(id));
  await until(() => daemon.health().sources.length === 2 && daemon.health().sources.every((source) => source.lastSuccessAt !== null));
  expect(daemon.health()).toMatchObject({ provider: 'aws', watchAlive: true, sources: [{ provider: 'aws', alive: true }, { provider: 'kubernetes', alive: true }] });

  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  await until(() => finished.length === 1);
  await label('true');
  await until(() => finished.length === 2);
  const [aws, node] = finished.map((line) => line.split(' '));
  expect([aws![0], aws![1], node![0], node![1]]).toEqual(['aws', 'terminate', 'kubernetes', 'preempt']);

  await label(null);
  await until(() => withdrawn.length === 1);
  expect(withdrawn).toEqual([node![2]]);

  // The same signal raised again in this boot is a new notice, and its plan runs.
  await label('true');
  await until(() => finished.length === 3);
  const again = finished[2]!.split(' ');
  expect(again.slice(0, 2)).toEqual(['kubernetes', 'preempt']);
  expect(again[2]).not.toBe(node![2]);
  expect(hooks.requests.map((request) => (JSON.parse(request.body) as { notice: { provider: string } }).notice.provider)).toEqual(['aws', 'kubernetes', 'kubernetes']);

  // The Node's source failing shows on its own line; the cloud's stays clean.
  server.setTokens({ admin: 'admin' });
  server.dropWatches();
  await until(() => (daemon.health().sources.find((source) => source.provider === 'kubernetes')?.consecutiveErrors ?? 0) > 0);
  const health = daemon.health();
  expect(health.sources.find((source) => source.provider === 'aws')).toMatchObject({ consecutiveErrors: 0, alive: true });
  expect(health.consecutiveErrors).toBeGreaterThan(0);
});
