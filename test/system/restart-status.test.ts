import { existsSync, readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startNotifySocket } from '../../bench/lib/notify-socket.js';
import { freePort } from '../helpers/free-port.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-restart-status-');

/** A drain endpoint that never answers: a step that is still running when the agent is killed. */
async function holdingServer(): Promise<{ url: string; requests: () => number }> {
  const held: ServerResponse[] = [];
  const server = createServer((request, response) => {
    request.resume();
    held.push(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  resources.defer(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/drain`, requests: () => held.length };
}

function journaledSteps(stateDir: string): string[] {
  const path = join(stateDir, 'journal.json');
  if (!existsSync(path)) return [];
  try {
    const journal = JSON.parse(readFileSync(path, 'utf8')) as { notices: Array<{ steps: Record<string, unknown> }> };
    return Object.keys(journal.notices[0]?.steps ?? {});
  } catch {
    return [];
  }
}

test('after a restart mid-plan, /v1/status and the systemd STATUS show the steps finished before it as finished', async () => {
  const simulator = await resources.simulator({ provider: 'aws' });
  const drain = await holdingServer();
  const dir = resources.tempDir();
  const stateDir = join(dir, 'state');
  const port = await freePort();
  const config = writeConfigFile(dir, {
    provider: 'aws',
    metadataUrl: simulator.url,
    pollInterval: '100ms',
    stateDir,
    server: { listen: `127.0.0.1:${port}` },
    steps: [
      { name: 'checkpoint', exec: { command: ['true'] } },
      { name: 'drain', after: ['checkpoint'], http: { url: drain.url, method: 'POST' } },
    ],
  });
  // Whole seconds, as IMDS gives them; far enough ahead that the restarted agent resumes the plan.
  const deadline = new Date(Math.ceil(Date.now() / 1000) * 1000 + 120_000);
  simulator.trigger({ kind: 'terminate', time: deadline.toISOString() });

  const first = resources.agent(['--config', config]);
  await until(() => journaledSteps(stateDir).includes('checkpoint') && drain.requests() === 1, 15_000);
  first.child.kill('SIGKILL');
  await first.exited;

  const socket = await startNotifySocket();
  resources.defer(() => socket.close());
  const second = resources.agent(['--config', config], { NOTIFY_SOCKET: socket.path });
  await second.waitForLog((line) => line.msg === 'resuming a plan interrupted by a restart');
  await until(() => drain.requests() === 2, 15_000);

  const status = (await (await fetch(`http://127.0.0.1:${port}/v1/status`)).json()) as {
    notices: Array<{ state: string; steps: Array<{ name: string; state: string; detail?: Record<string, unknown> }> }>;
  };
  expect(status.notices).toHaveLength(1);
  const [notice] = status.notices;
  expect(notice!.state).toBe('running');
  expect(notice!.steps.map((step) => [step.name, step.state])).toEqual([
    ['checkpoint', 'ok'],
    ['drain', 'running'],
  ]);
  expect(notice!.steps[0]!.detail).toMatchObject({ fromJournal: true });

  const at = deadline.toISOString().slice(11, 19);
  const counted = await socket.waitFor((message) => message.fields.STATUS?.startsWith(`notice terminate at ${at}`) ?? false, 15_000);
  expect(counted.fields.STATUS).toBe(`notice terminate at ${at}, 1/2 steps done`);
}, 60_000);
