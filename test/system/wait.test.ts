import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';
import { runCli, startAgent } from '../helpers/cli.js';
import { freePort } from '../helpers/free-port.js';
import { until } from '../helpers/until.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-wait-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function simulator(): Promise<RunningSimulator> {
  const metadata = await startSimulator({ provider: 'aws' });
  cleanups.push(() => metadata.close());
  return metadata;
}

/** No config file: the default path is absent here, so wait runs on defaults and flags. */
const NO_CONFIG = { PREEMPTD_CONFIG: '' };

describe('preemptd wait', () => {
  test('with no agent it watches the metadata service itself and prints the notice as JSON (exit 0)', async () => {
    const metadata = await simulator();
    const agent = `http://127.0.0.1:${await freePort()}`;
    setTimeout(() => metadata.trigger({ kind: 'terminate', leadMs: 120_000 }), 500).unref();
    const result = await runCli(['wait', '--provider', 'aws', '--metadata-url', metadata.url, '--poll-interval', '100ms', '--agent', agent, '--timeout', '15s'], NO_CONFIG);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`no agent answers at ${agent}: watching the metadata service itself`);
    const notice = JSON.parse(result.stdout);
    expect(notice).toMatchObject({ provider: 'aws', kind: 'terminate', advisory: false });
    expect(Object.keys(notice).sort()).toEqual(['advisory', 'deadline', 'detectedAt', 'id', 'kind', 'provider', 'secondsLeft']);
    expect(notice.secondsLeft).toBeGreaterThan(100);
  });

  test('exits 2 when --timeout passes first; a notice of another --kind does not end the wait', async () => {
    const metadata = await simulator();
    metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
    const agent = `http://127.0.0.1:${await freePort()}`;
    const result = await runCli(['wait', '--provider', 'aws', '--metadata-url', metadata.url, '--poll-interval', '100ms', '--agent', agent, '--timeout', '1s', '--kind', 'stop'], NO_CONFIG);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('preemptd: no notice within 1s');
  });

  test('a bad --timeout, --agent or --kind is a usage error (64)', async () => {
    const bare = await runCli(['wait', '--timeout', '30'], NO_CONFIG);
    expect(bare.code).toBe(64);
    expect(bare.stderr).toContain('--timeout: got "30": a duration needs a unit');
    const agent = await runCli(['wait', '--agent', '127.0.0.1:9464'], NO_CONFIG);
    expect(agent.code).toBe(64);
    expect(agent.stderr).toContain('--agent: got "127.0.0.1:9464": expected the agent\'s local server as a URL, e.g. http://127.0.0.1:9464');
    const kind = await runCli(['wait', '--kind', 'spot'], NO_CONFIG);
    expect(kind.code).toBe(64);
    expect(kind.stderr).toContain('Invalid values');
  });

  test("asks the running agent: the notice it handles (the notice file holds the same), without reading the metadata service", async () => {
    const metadata = await simulator();
    const dir = tempDir();
    const port = await freePort();
    const noticeFile = join(dir, 'run', 'notice.json');
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        provider: 'aws',
        metadataUrl: metadata.url,
        pollInterval: '100ms',
        stateDir: join(dir, 'state'),
        noticeFile,
        server: { listen: `127.0.0.1:${port}` },
        // Holds the plan running until the test has asked (however long a loaded machine takes to start the CLI).
        steps: [{ name: 'hold', timeout: '60s', exec: { command: ['sh', '-c', `until [ -e ${join(dir, 'release')} ]; do sleep 0.05; done`] } }],
      }),
    );
    const running = startAgent(['--config', config]);
    cleanups.push(async () => {
      running.child.kill('SIGKILL');
      await running.exited;
    });
    await running.waitForLog((line) => line.msg === 'daemon watching');
    metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
    await until(() => existsSync(noticeFile));
    const fromFile = JSON.parse(readFileSync(noticeFile, 'utf8'));
    // Nothing answers at this metadata address: the notice can only come from the agent.
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    const result = await runCli(['wait', '--config', config, '--metadata-url', unreachable, '--timeout', '10s']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const notice = JSON.parse(result.stdout);
    expect(notice).toEqual({ ...fromFile, secondsLeft: expect.any(Number) });
    writeFileSync(join(dir, 'release'), '');
    await until(() => !existsSync(noticeFile));
  });
});
