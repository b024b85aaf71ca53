import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { TestResources, writeAgentConfig, writeConfigFile } from '../helpers/resources.js';
import { startNotifySocket, type NotifyMessage } from '../../bench/lib/notify-socket.js';

const resources = new TestResources('preemptd-systemd-run-');

test('preemptd run under a notification socket sends READY, STATUS, WATCHDOG and STOPPING in order', async () => {
  const simulator = await resources.simulator({ provider: 'aws' });
  const socket = await startNotifySocket();
  resources.defer(() => socket.close());
  const config = writeAgentConfig(resources.tempDir(), { metadataUrl: simulator.url, steps: ['  - { name: note, exec: { command: ["true"] } }'] });

  // WATCHDOG_USEC as systemd sets it for WatchdogSec=1s: a ping every 500 ms.
  const agent = resources.agent(['--config', config], { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000' });

  const ready = await socket.waitFor((message) => message.fields.READY === '1', 15_000);
  expect(ready.fields.STATUS).toBe('watching aws, first metadata read pending');
  await socket.waitFor((message) => message.fields.STATUS === 'watching aws, no notice');
  expect(ready.fields.MAINPID).toBe(String(agent.child.pid));
  await socket.waitFor((message) => message.fields.WATCHDOG === '1');

  simulator.trigger({ kind: 'terminate', time: '2036-01-01T12:02:00Z' });
  await socket.waitFor((message) => /^watching aws, handled terminate at 12:02:00: 1\/1 steps done$/.test(message.fields.STATUS ?? ''));

  agent.child.kill('SIGTERM');
  const stopping = await socket.waitFor((message) => message.fields.STOPPING === '1');
  expect(stopping.fields.STATUS).toBe('stopping');
  expect(await agent.exited).toBe(0);

  const kinds = socket.messages.map(kindOf);
  expect(kinds[0]).toBe('READY');
  expect(kinds.at(-1)).toBe('STOPPING');
  const firstNoticeStatus = socket.messages.findIndex((message) => message.fields.STATUS?.startsWith('notice terminate at 12:02:00'));
  expect(firstNoticeStatus).toBeGreaterThan(kinds.indexOf('WATCHDOG'));
  // No watchdog pings once stopping: the watch loop has ended.
  expect(kinds.slice(kinds.indexOf('STOPPING') + 1)).toEqual([]);
});

test('READY=1 arrives while the metadata service has not answered yet (Azure: up to two minutes), and STATUS says so', async () => {
  // Accepts connections and never answers, as a slow first Scheduled Events call does.
  const sockets: Socket[] = [];
  const silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  resources.defer(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const port = (silent.address() as { port: number }).port;
  const socket = await startNotifySocket();
  resources.defer(() => socket.close());
  const dir = resources.tempDir();
  const config = writeConfigFile(dir, { provider: 'azure', metadataUrl: `http://127.0.0.1:${port}`, server: { enabled: false }, stateDir: join(dir, 'state') });

  const agent = resources.agent(['--config', config], { NOTIFY_SOCKET: socket.path });

  const ready = await socket.waitFor((message) => message.fields.READY === '1', 15_000);
  expect(ready.fields.STATUS).toBe('watching azure, first metadata read pending');
  agent.child.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
});

function kindOf(message: NotifyMessage): string {
  if (message.fields.READY) return 'READY';
  if (message.fields.STOPPING) return 'STOPPING';
  if (message.fields.WATCHDOG) return 'WATCHDOG';
  return 'STATUS';
}
