import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveAccess } from '../../src/kubernetes/access.js';
import { KubeClient } from '../../src/kubernetes/client.js';
import { runCli, startAgent } from '../helpers/cli.js';
import { startKubeApiServer } from '../helpers/kube-api-server.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-kube-source-');
const TOKEN = 'agent-token';

/** A fake API server with node-1, a kubeconfig for the agent, and a client that changes the Node as the platform would. */
async function cluster(dir: string) {
  const server = await startKubeApiServer({ tokens: { [TOKEN]: 'system:serviceaccount:preemptd:preemptd' } });
  resources.defer(() => server.close());
  server.addNode('node-1');
  const kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: TOKEN });
  const admin = new KubeClient(await resolveAccess({ kubeconfig }));
  const patchNode = (patch: object) =>
    admin.call({ method: 'PATCH', path: '/api/v1/nodes/node-1', body: patch, contentType: 'application/merge-patch+json', needs: { verb: 'patch', resource: 'nodes' }, signal: AbortSignal.timeout(5000) });
  return { kubeconfig, patchNode };
}

test('provider: kubernetes runs the plan when Karpenter taints the agent\'s Node, and check reads the Node', async () => {
  const dir = resources.tempDir();
  const { kubeconfig, patchNode } = await cluster(dir);
  const ran = join(dir, 'plan-ran');
  const config = writeConfigFile(dir, {
    provider: 'kubernetes',
    kubernetes: { kubeconfig },
    stateDir: join(dir, 'state'),
    noticeFile: join(dir, 'notice.json'),
    server: { enabled: false },
    steps: [{ name: 'mark', exec: { command: ['touch', ran] } }],
  });
  const env = { NODE_NAME: 'node-1' };

  const checked = await runCli(['check', '--config', config], env);
  // The watch's first read of the Node, as check makes it.
  expect(checked.stdout).toMatch(/✓ metadata kubernetes node node-1 +HTTP 200/);
  expect(checked.code).toBe(0);

  const agent = startAgent(['--config', config], env);
  resources.defer(async () => {
    agent.child.kill('SIGKILL');
    await agent.exited;
  });
  await agent.waitForLog((line) => line.msg === 'daemon watching');
  expect(existsSync(ran)).toBe(false);
  await patchNode({ spec: { taints: [{ key: 'karpenter.sh/disrupted', effect: 'NoSchedule' }] } });
  await until(() => existsSync(ran));
  const notice = await agent.waitForLog((line) => line.msg === 'notice' || (typeof line.notice === 'object' && line.notice !== null));
  expect(JSON.stringify(notice)).toContain('kubernetes');
});

test('check with kubernetes.watchNode beside a cloud reads both sources: the metadata service and the Node', async () => {
  const dir = resources.tempDir();
  const { kubeconfig } = await cluster(dir);
  const metadataUrl = (await resources.simulator({ provider: 'aws' })).url;
  const config = writeConfigFile(dir, {
    provider: 'aws',
    metadataUrl,
    kubernetes: { kubeconfig, watchNode: true },
    stateDir: join(dir, 'state'),
    server: { enabled: false },
    steps: [{ name: 'mark', exec: { command: ['true'] } }],
  });

  const checked = await runCli(['check', '--config', config], { NODE_NAME: 'node-1' });
  expect(checked.stdout).toMatch(/✓ provider +aws, set in the config \(no detection\); and the own Node \(kubernetes.watchNode\)/);
  expect(checked.stdout).toMatch(/✓ metadata spot\/instance-action +nothing there/);
  expect(checked.stdout).toMatch(/✓ metadata kubernetes node node-1 +HTTP 200/);
  expect(checked.code).toBe(0);
});
