import { join } from 'node:path';
import { beforeEach, expect, jest, test } from '@jest/globals';
import { simulateCommand } from '../../src/commands/simulate.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-api-server.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';

// `simulate --dry-run` with a draining kubernetes step: the pods it would evict now, read
// from the API (list and gets only), or a note when the API cannot be reached.
const TOKEN = 'agent-token';
const resources = new TestResources('preemptd-k8s-dry-run-');
let server: KubeApiServer;
let file: string;

beforeEach(async () => {
  server = await startKubeApiServer({ tokens: { [TOKEN]: 'system:serviceaccount:preemptd:preemptd' } });
  resources.defer(() => server.close());
  const dir = resources.tempDir();
  const kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: TOKEN });
  server.addNode('node-1');
  server.addDaemonSet('kube-system', 'agent');
  server.addPod({ name: 'agent-1', namespace: 'kube-system', nodeName: 'node-1', owner: { kind: 'DaemonSet', name: 'agent' } });
  server.addPod({ name: 'db-0', nodeName: 'node-1', labels: { app: 'db' } });
  server.addPod({ name: 'keep', nodeName: 'node-1', labels: { keep: 'yes' } });
  server.addPod({ name: 'web', nodeName: 'node-1', labels: { app: 'web' } });
  server.addPod({ name: 'elsewhere', nodeName: 'node-2' });
  file = writeConfigFile(dir, {
    stateDir: '/nonexistent/dry-run-never-writes-here',
    steps: [{ name: 'drain-node', kubernetes: { node: 'node-1', kubeconfig, cordon: true, event: false, drain: { first: ['app=web'], exclude: ['keep=yes'] } } }],
  });
});

async function dryRun(json = false): Promise<string> {
  const written: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  try {
    await simulateCommand({ config: file, kind: 'terminate', deadline: '120s', dryRun: true, ...(json ? { json } : {}) } as never);
  } finally {
    write.mockRestore();
  }
  return written.join('');
}

test('lists the pods a drain would evict now, in order, and the skipped ones with why, changing nothing', async () => {
  const text = await dryRun();
  expect(text).toContain(
    [
      'What the steps would act on now (read only):',
      '  drain-node: node node-1: evicts 2 pods now, in this order: default/web, default/db-0',
      '  drain-node: node node-1: skips default/keep (excluded by "keep=yes"), kube-system/agent-1 (DaemonSet pod)',
    ].join('\n'),
  );
  const json = JSON.parse(await dryRun(true)) as { previews: unknown };
  expect(json.previews).toEqual([{ step: 'drain-node', lines: [expect.stringContaining('in this order: default/web, default/db-0'), expect.stringContaining('skips')] }]);
  expect(new Set(server.requests.map((request) => request.method))).toEqual(new Set(['GET']));
});

test('says it could not look when the API is unreachable, and still describes the rules', async () => {
  await server.close();
  const text = await dryRun();
  expect(text).toMatch(/ {2}drain-node: could not look \(.*unreachable \(ECONNREFUSED\).*\); only its description above is known/);
  expect(text).toContain('drain it: evict');
});
