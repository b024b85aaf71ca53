import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CLI, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/free-port.js';
import { TestResources, writeAgentConfig } from '../helpers/resources.js';

const resources = new TestResources('preemptd-startup-edges-');

/**
 * A metadata service whose IMDSv2 token PUT is never answered (`hang`: the hop-limit case)
 * or has its connection dropped (`reset`); every GET is refused a token-less read.
 */
async function failingTokenService(mode: 'hang' | 'reset'): Promise<{ url: string; tokenRequests: () => number }> {
  const held: ServerResponse[] = [];
  let tokenRequests = 0;
  const server = createServer((request, response) => {
    request.resume();
    if (request.method !== 'PUT') return void response.writeHead(401).end();
    tokenRequests += 1;
    if (mode === 'hang') held.push(response);
    else request.socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  resources.defer(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tokenRequests: () => tokenRequests };
}

describe('AWS with the local server disabled keeps retrying a failing IMDSv2 token', () => {
  test.each([
    ['never answered', 'hang', 'ERR_TOKEN_TIMEOUT'],
    ['dropped', 'reset', 'ERR_METADATA_UNREACHABLE'],
  ] as const)('a token PUT that is %s: still running and retrying after several seconds, the failure logged', async (_, mode, code) => {
    const metadata = await failingTokenService(mode);
    const dir = resources.tempDir();
    const config = writeAgentConfig(dir, { metadataUrl: metadata.url, steps: ['  []'], settings: ['aws: { tokenTimeout: 200ms }'] });
    const agent = resources.agent(['--config', config]);
    await agent.waitForLog((line) => line.level === 'warn' && (line.err as { code?: string } | undefined)?.code === code);
    const before = metadata.tokenRequests();
    await delay(4000);
    expect(agent.child.exitCode).toBeNull();
    expect(metadata.tokenRequests()).toBeGreaterThan(before);
  });
});

describe('a state dir the journal cannot use stops start-up with the path and exit 78', () => {
  test('journal.json is a directory', async () => {
    const dir = resources.tempDir();
    const config = writeAgentConfig(dir, { metadataUrl: `http://127.0.0.1:${await freePort()}`, steps: ['  []'] });
    const journal = join(dir, 'state', 'journal.json');
    mkdirSync(journal, { recursive: true });
    const result = await runCli(['run', '--config', config]);
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(journal);
    expect(result.stderr).toMatch(/is a directory/);
  });

  test('the state dir lies under a regular file', async () => {
    const dir = resources.tempDir();
    writeFileSync(join(dir, 'plain'), '');
    const stateDir = join(dir, 'plain', 'state');
    const config = writeAgentConfig(dir, { metadataUrl: `http://127.0.0.1:${await freePort()}`, steps: ['  []'], settings: [] });
    const result = await runCli(['run', '--config', config, '--state-dir', stateDir]);
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(stateDir);
  });

  // Root writes anywhere: as root the agent runs as nobody, in directories root owns.
  const asNobody = process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : {};

  test.each([
    ['cannot be created', false],
    ['exists but cannot be written', true],
  ])('the state dir %s', async (_, exists) => {
    const dir = resources.tempDir();
    const stateDir = join(dir, 'state');
    const config = writeAgentConfig(dir, { metadataUrl: `http://127.0.0.1:${await freePort()}`, steps: ['  []'] });
    if (exists) mkdirSync(stateDir, { mode: 0o555 });
    chmodSync(dir, 0o555);
    resources.defer(() => chmodSync(dir, 0o700));
    const result = spawnSync(process.execPath, [CLI, 'run', '--config', config], { ...asNobody, encoding: 'utf8', timeout: 20_000 });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain(`state dir ${stateDir} cannot hold the journal`);
    expect(result.stderr).toMatch(/permission denied/);
  });
});

describe('a ${file:} reference that is not a regular file is refused at once (exit 78), at start and on SIGHUP', () => {
  function fifo(dir: string): string {
    const path = join(dir, 'secret.fifo');
    expect(spawnSync('mkfifo', [path]).status).toBe(0);
    return path;
  }

  test.each([
    ['/dev/zero', () => '/dev/zero', 'a character device'],
    ['a FIFO', fifo, 'a FIFO (named pipe)'],
  ])('check with ${file:%s}', async (_, path, kind) => {
    const dir = resources.tempDir();
    const ref = path(dir);
    const config = writeAgentConfig(dir, { metadataUrl: `http://127.0.0.1:${await freePort()}`, steps: ['  []'], settings: [`logLevel: "\${file:${ref}}"`] });
    const result = await runCli(['check', '--config', config], {}, 15_000);
    expect(result.code).toBe(78);
    expect(result.stdout + result.stderr).toContain(`logLevel: \${file:${ref}}: cannot read ${ref}: ${kind}; expected a regular file holding the value`);
  });

  test('a reload that meets a FIFO is refused and the agent keeps running', async () => {
    const dir = resources.tempDir();
    const metadataUrl = `http://127.0.0.1:${await freePort()}`;
    const config = writeAgentConfig(dir, { metadataUrl, steps: ['  []'] });
    const agent = resources.agent(['--config', config]);
    await agent.waitForLog((line) => line.msg === 'daemon watching');
    writeAgentConfig(dir, { metadataUrl, steps: ['  []'], settings: [`logLevel: "\${file:${fifo(dir)}}"`] });
    agent.child.kill('SIGHUP');
    const refused = await agent.waitForLog((line) => String(line.msg).startsWith('config reload refused'));
    expect(String(refused.msg)).toContain('a FIFO (named pipe)');
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});

describe('a bare number is not a duration on the command line either', () => {
  test.each([
    ['simulate --dry-run --config /nonexistent.yaml --deadline 10', 64, '--deadline: got "10": a duration needs a unit: write 10s'],
    ['simulator --port 0 --lead 5', 64, '--lead: got "5": a duration needs a unit: write 5s'],
    ['simulator --port 0 --notice-after 3', 64, '--notice-after: got "3": a duration needs a unit: write 3s'],
  ])('preemptd %s', async (command, code, message) => {
    const result = await runCli(command.split(' '), {}, 15_000);
    expect(result.code).toBe(code);
    expect(result.stdout + result.stderr).toContain(message);
  });

  test('preemptd check --poll-interval 3', async () => {
    const dir = resources.tempDir();
    const config = writeAgentConfig(dir, { metadataUrl: `http://127.0.0.1:${await freePort()}`, steps: ['  []'] });
    const result = await runCli(['check', '--config', config, '--poll-interval', '3'], {}, 15_000);
    expect(result.code).toBe(78);
    expect(result.stdout).toContain('pollInterval: got 3: a duration needs a unit: write 3s for seconds (or 3ms, 3m, 3h); only 0 stands alone (from --poll-interval)');
  });
});

describe('PREEMPTD_* variables that are no setting', () => {
  test('Kubernetes service links are ignored and a user variable is a warning: the agent runs', async () => {
    const dir = resources.tempDir();
    const config = writeAgentConfig(dir, { metadataUrl: `http://127.0.0.1:${await freePort()}`, steps: ['  []'] });
    const agent = resources.agent(['--config', config], {
      PREEMPTD_SERVICE_HOST: '10.96.0.7',
      PREEMPTD_SERVICE_PORT: '9464',
      PREEMPTD_PORT: 'tcp://10.96.0.7:9464',
      PREEMPTD_PORT_9464_TCP: 'tcp://10.96.0.7:9464',
      PREEMPTD_PORT_9464_TCP_ADDR: '10.96.0.7',
      PREEMPTD_SLACK_URL: 'https://hooks.example/x',
    });
    const warning = await agent.waitForLog((line) => line.variable === 'PREEMPTD_SLACK_URL');
    expect(warning.level).toBe('warn');
    expect(String(warning.msg)).toContain('PREEMPTD_SLACK_URL: not a setting, ignored');
    await agent.waitForLog((line) => line.msg === 'daemon watching');
    expect(agent.lines().filter((line) => line.variable !== undefined)).toHaveLength(1);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  test('PREEMPTD_CONFIG names the config file; --config beats it', async () => {
    const dir = resources.tempDir();
    const config = writeAgentConfig(dir, { metadataUrl: `http://127.0.0.1:${await freePort()}`, steps: ['  []'], settings: ['logLevel: loud'] });
    const fromEnv = await runCli(['check'], { PREEMPTD_CONFIG: config }, 15_000);
    expect(fromEnv.code).toBe(78);
    expect(fromEnv.stdout).toContain(`invalid config ${config}`);
    const flagWins = await runCli(['check', '--config', join(dir, 'missing.yaml')], { PREEMPTD_CONFIG: config }, 15_000);
    expect(flagWins.stdout).toContain(`cannot read ${join(dir, 'missing.yaml')}`);
  });
});
