import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../src/simulator/server.js';
import { startAgent } from './helpers/cli.js';
import { startNotifySocket, type NotifyMessage } from '../bench/lib/notify-socket.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

test('preemptd run under a notification socket sends READY, STATUS, WATCHDOG and STOPPING in order', async () => {
  const simulator = await startSimulator({ provider: 'aws' });
  cleanups.push(() => simulator.close());
  const socket = await startNotifySocket();
  cleanups.push(() => socket.close());
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-systemd-run-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'provider: aws',
      `metadataUrl: ${simulator.url}`,
      'pollInterval: 100ms',
      `stateDir: ${join(dir, 'state')}`,
      'server: { enabled: false }',
      'steps:',
      '  - { name: note, exec: { command: ["true"] } }',
    ].join('\n'),
  );

  // WATCHDOG_USEC as systemd sets it for WatchdogSec=1s: a ping every 500 ms.
  const agent = startAgent(['--config', config], { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000' });
  cleanups.push(async () => {
    if (agent.child.exitCode === null) {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
  });

  const ready = await socket.waitFor((message) => message.fields.READY === '1', 15_000);
  expect(ready.fields.STATUS).toBe('watching aws, no notice');
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

function kindOf(message: NotifyMessage): string {
  if (message.fields.READY) return 'READY';
  if (message.fields.STOPPING) return 'STOPPING';
  if (message.fields.WATCHDOG) return 'WATCHDOG';
  return 'STATUS';
}
