import { join } from 'node:path';
import { healthzUrl } from '../../src/commands/health.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/free-port.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';

const resources = new TestResources('preemptd-health-');

test('asks loopback when the agent listens on every interface', () => {
  expect(healthzUrl({ host: '0.0.0.0', port: 9464 })).toBe('http://127.0.0.1:9464/healthz');
  expect(healthzUrl({ host: '::', port: 9464 })).toBe('http://[::1]:9464/healthz');
  expect(healthzUrl({ host: '::1', port: 80 })).toBe('http://[::1]:80/healthz');
  expect(healthzUrl({ host: '10.1.2.3', port: 9100 })).toBe('http://10.1.2.3:9100/healthz');
});

test('preemptd health follows the listen address of the config: 0 while the agent is healthy, 1 once it is gone', async () => {
  const simulator = await resources.simulator({ provider: 'aws' });
  const dir = resources.tempDir();
  const port = await freePort();
  const config = writeConfigFile(dir, { provider: 'aws', metadataUrl: simulator.url, pollInterval: '100ms', stateDir: join(dir, 'state'), server: { listen: `127.0.0.1:${port}` } });
  const agent = resources.agent(['--config', config]);
  await agent.waitForLog((line) => line.msg === 'daemon watching', 15_000);

  let healthy = await runCli(['health', '--config', config]);
  for (let tries = 0; healthy.code !== 0 && tries < 50; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    healthy = await runCli(['health', '--config', config]);
  }
  expect(healthy).toMatchObject({ code: 0, stdout: `http://127.0.0.1:${port}/healthz: HTTP 200, ok\n` });

  agent.child.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
  const gone = await runCli(['health', '--config', config]);
  expect(gone.code).toBe(1);
  expect(gone.stdout).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/healthz: no answer \\(.*\\): is the agent running\\?\\n$`));
});

test('preemptd health with the local server disabled says there is nothing to ask, exit 1', async () => {
  const dir = resources.tempDir();
  const config = writeConfigFile(dir, { provider: 'aws', metadataUrl: 'http://127.0.0.1:9', stateDir: dir, server: { enabled: false } });
  const result = await runCli(['health', '--config', config]);
  expect(result).toMatchObject({ code: 1, stdout: '' });
  expect(result.stderr).toContain('the local server is disabled (server.enabled: false)');
});
