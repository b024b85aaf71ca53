import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestResources, writeAgentConfig } from '../helpers/resources.js';

/** Issue 13: two agents on one stateDir must not both run. */
const resources = new TestResources('preemptd-state-lock-');

const watching = (line: Record<string, unknown>) => line.msg === 'daemon watching';

async function agentConfig(): Promise<{ config: string; stateDir: string }> {
  const simulator = await resources.simulator({ provider: 'aws' });
  const dir = resources.tempDir();
  return { config: writeAgentConfig(dir, { metadataUrl: simulator.url, steps: ['  - { name: note, exec: { command: ["true"] } }'] }), stateDir: join(dir, 'state') };
}

test('a second agent on the same stateDir names the first one and exits 78; the first runs on', async () => {
  const { config, stateDir } = await agentConfig();
  const first = resources.agent(['--config', config]);
  await first.waitForLog(watching);

  const second = resources.agent(['--config', config]);
  expect(await second.exited).toBe(78);
  expect(second.output()).toContain(`in use by another preemptd (pid ${first.child.pid}`);
  expect(second.output()).toContain(join(stateDir, 'preemptd.lock'));
  // The reason is a JSON log line on stdout too, beside the human line on stderr.
  expect(second.lines().filter((line) => line.level === 'fatal')).toEqual([
    expect.objectContaining({ exitCode: 78, err: expect.objectContaining({ code: 'ERR_STATE_LOCKED', type: 'PreemptdError' }) }),
  ]);

  expect(first.child.exitCode).toBeNull();
  first.child.kill('SIGTERM');
  expect(await first.exited).toBe(0);
  expect(existsSync(join(stateDir, 'preemptd.lock'))).toBe(false);
}, 30_000);

test('a lock left by a process that is gone, or by an earlier boot, is taken over', async () => {
  const { config, stateDir } = await agentConfig();
  mkdirSync(stateDir, { recursive: true });
  const lock = join(stateDir, 'preemptd.lock');
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  // The pid of a process that has exited: nothing runs under it now.
  const gone = spawnSync(process.execPath, ['-e', '0']).pid;
  for (const holder of [
    { pid: gone, boot, since: '2026-01-01T00:00:00.000Z' },
    { pid: process.pid, boot: 'an-earlier-boot', since: '2026-01-01T00:00:00.000Z' },
  ]) {
    writeFileSync(lock, JSON.stringify(holder));
    const agent = resources.agent(['--config', config]);
    await agent.waitForLog(watching);
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ pid: agent.child.pid, boot });
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  }
}, 30_000);
