import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type RunningSimulator } from '../src/simulator/server.js';
import { runCli, startAgent, type AgentProcess } from './helpers/cli.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function agent(args: string[], env: NodeJS.ProcessEnv = {}): AgentProcess {
  const running = startAgent(args, env);
  cleanups.push(async () => {
    if (running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
  });
  return running;
}

async function simulator(): Promise<RunningSimulator> {
  const running = await startSimulator({ provider: 'aws' });
  cleanups.push(() => running.close());
  return running;
}

async function receiver(): Promise<Receiver> {
  const running = await startReceiver({ status: 204 });
  cleanups.push(() => running.close());
  return running;
}

test('--help lists every command and --version prints the version', async () => {
  const help = await runCli(['--help']);
  expect(help.code).toBe(0);
  for (const command of ['run', 'simulator']) expect(help.stdout).toContain(command);
  const version = await runCli(['--version']);
  expect(version.code).toBe(0);
  expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
});

test('each command has its own --help', async () => {
  const run = await runCli(['run', '--help']);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('--config');
  expect(run.stdout).toContain('--set');
  const simulator = await runCli(['simulator', '--help']);
  expect(simulator.code).toBe(0);
  expect(simulator.stdout).toContain('--notice-after');
});

test('an unknown command exits 64 with a pointer to --help', async () => {
  const result = await runCli(['wobble']);
  expect(result.code).toBe(64);
  expect(result.stderr).toMatch(/Unknown argument: wobble/i);
  expect(result.stderr).toContain('preemptd --help');
});

test('an invalid config exits 78 naming the file, the field and what was expected; nothing starts', async () => {
  const dir = tempDir();
  const file = join(dir, 'config.yaml');
  writeFileSync(file, 'pollInterval: 5 minutes\nsteps: []\n');
  const result = await runCli(['run', '--config', file]);
  expect(result.code).toBe(78);
  expect(result.stderr).toContain(file);
  expect(result.stderr).toContain('pollInterval');
  expect(result.stderr).toContain('"5 minutes"');
  expect(result.stderr).toMatch(/expected a duration/);
  expect(result.stdout).not.toContain('daemon watching');
});

test('a missing config file exits 78 and says which file', async () => {
  const file = join(tempDir(), 'absent.yaml');
  const result = await runCli(['run', '--config', file]);
  expect(result.code).toBe(78);
  expect(result.stderr).toContain(file);
});

test('a webhook URL taken from ${env:...} is used but never appears in the logs', async () => {
  const metadata = await simulator();
  const hooks = await receiver();
  const secretPath = '/services/T000/B000/sEcReT-tOkEn-8f2a91';
  const dir = tempDir();
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      'provider: aws',
      `metadataUrl: ${metadata.url}`,
      'pollInterval: 100ms',
      // Tests run side by side: no agent here needs the local server's fixed port.
      'server: { enabled: false }',
      `stateDir: ${join(dir, 'state')}`,
      'steps:',
      '  - name: tell-ops',
      '    webhook: { url: "${env:HOOK_URL}", send: both }',
    ].join('\n'),
  );
  const running = agent(['--config', file, '--log-level', 'trace'], { HOOK_URL: hooks.url(secretPath) });
  await running.waitForLog((line) => line.msg === 'daemon watching');
  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  await running.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('plan finished'));
  running.child.kill('SIGTERM');
  expect(await running.exited).toBe(0);

  expect(hooks.requests.map((request) => request.path)).toEqual([secretPath, secretPath]);
  expect(running.output()).not.toContain('sEcReT-tOkEn-8f2a91');
  expect(running.output()).not.toContain(hooks.url(secretPath));
});

test('PREEMPTD_* environment variables and flags override the file, flags last', async () => {
  const metadata = await simulator();
  const dir = tempDir();
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `provider: gcp\nmetadataUrl: http://127.0.0.1:9\nserver: { enabled: false }\nstateDir: ${join(dir, 'state')}\nsteps: []\n`);
  const running = agent(['--config', file, '--metadata-url', metadata.url, '--set', 'pollInterval=100ms'], { PREEMPTD_PROVIDER: 'aws', PREEMPTD_METADATA_URL: 'http://127.0.0.1:10' });
  await running.waitForLog((line) => line.msg === 'daemon watching');
  // Polls reach the simulator: provider came from the env, the URL from the flag.
  const polls = () => metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0;
  const started = Date.now();
  while (polls() < 3 && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(polls()).toBeGreaterThanOrEqual(3);
  running.child.kill('SIGTERM');
  expect(await running.exited).toBe(0);
});

test('a restart in the middle of a plan does not repeat finished steps and runs the unfinished ones', async () => {
  const metadata = await simulator();
  const hooks = await receiver();
  const dir = tempDir();
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      'provider: aws',
      `metadataUrl: ${metadata.url}`,
      'pollInterval: 100ms',
      // Tests run side by side: no agent here needs the local server's fixed port.
      'server: { enabled: false }',
      `stateDir: ${join(dir, 'state')}`,
      'steps:',
      `  - { name: tell-ops, webhook: { url: "${hooks.url('/notice')}" } }`,
      '  - { name: long-drain, exec: { command: [sleep, "3"] } }',
      `  - { name: after-drain, after: [long-drain], webhook: { url: "${hooks.url('/after-drain')}" } }`,
    ].join('\n'),
  );
  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  const first = agent(['--config', file]);
  await hooks.waitFor(1);
  // Wait until the journal holds tell-ops as finished, then kill the agent mid-plan.
  const journalFile = join(dir, 'state', 'journal.json');
  const started = Date.now();
  while (!safeRead(journalFile).includes('tell-ops') && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 25));
  first.child.kill('SIGKILL');
  await first.exited;
  expect(hooks.requests.map((request) => request.path)).toEqual(['/notice']);

  const second = agent(['--config', file]);
  await second.waitForLog((line) => line.msg === 'resuming a plan interrupted by a restart');
  await hooks.waitFor(2, 15_000);
  await second.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('plan finished'));
  expect(hooks.requests.map((request) => request.path)).toEqual(['/notice', '/after-drain']);
  second.child.kill('SIGTERM');
  expect(await second.exited).toBe(0);
});

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
