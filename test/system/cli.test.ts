import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SIMULATED_CLOUDS } from '../../src/simulator/clouds.js';
import { runCli } from '../helpers/cli.js';
import { TestResources, writeAgentConfig } from '../helpers/resources.js';

const resources = new TestResources('preemptd-cli-');

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

test('simulator --help names every kind each provider can show, from the clouds\' own tables', async () => {
  const help = await runCli(['simulator', '--help']);
  expect(help.code).toBe(0);
  const table = help.stdout.slice(help.stdout.indexOf('Kinds each provider can show'));
  const sections = new Map(table.split(/^  (?=\w+:$)/m).slice(1).map((section) => [section.slice(0, section.indexOf(':')), section]));
  expect([...sections.keys()]).toEqual(Object.keys(SIMULATED_CLOUDS));
  for (const [provider, entry] of Object.entries(SIMULATED_CLOUDS)) {
    const listed = [...sections.get(provider)!.matchAll(/^    (\w+)\*?\s/gm)].map((match) => match[1]);
    expect(listed).toEqual(Object.keys(entry.kinds));
    expect(sections.get(provider)).toContain(`${entry.defaultKind}*`);
  }
});

test('simulator with a kind its provider cannot show exits 64 at start, listing the kinds it can', async () => {
  const result = await runCli(['simulator', '--provider', 'gcp', '--kind', 'stop', '--notice-after', '1s', '--port', '0']);
  expect(result.code).toBe(64);
  expect(result.stderr).toBe('preemptd: the gcp simulator cannot show a stop notice; it can show preempt, maintenance\n\nRun "preemptd --help" for usage.\n');
  expect(result.stdout).not.toContain('simulated gcp metadata service');
});

test('an unknown command exits 64 with a pointer to --help', async () => {
  const result = await runCli(['wobble']);
  expect(result.code).toBe(64);
  expect(result.stderr).toMatch(/Unknown argument: wobble/i);
  expect(result.stderr).toContain('preemptd --help');
});

test('no command at all exits 64 naming every command, restore included', async () => {
  const result = await runCli([]);
  expect(result.code).toBe(64);
  expect(result.stderr).toContain('name a command: run, check, health, simulate, simulator, wait, restore');
});

test('an unknown flag is named once, as typed, and exits 64', async () => {
  const result = await runCli(['run', '--bogus-flag', '--other-thing']);
  expect(result.code).toBe(64);
  expect(result.stderr).toContain('Unknown arguments: bogus-flag, other-thing\n');
});

test('a bad --log-level on simulator and restore exits 64 listing the choices', async () => {
  for (const args of [['simulator', '--port', '0'], ['restore', '--from', 'file:///tmp/x/', '--to', '/tmp/y']]) {
    const result = await runCli([...args, '--log-level', 'bogus']);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain('Choices: "trace", "debug", "info", "warn", "error", "fatal", "silent"');
  }
});

test('restore --from without a scheme is a usage error (64) that names the flag', async () => {
  const result = await runCli(['restore', '--from', '/dir', '--to', '/tmp/preemptd-never']);
  expect(result.code).toBe(64);
  expect(result.stderr).toMatch(/^preemptd: --from: expected s3:\/\/bucket\/prefix\//);
});

test('restore needs --from or --latest, not both, and --latest restores the newest committed dedup snapshot', async () => {
  const neither = await runCli(['restore', '--to', '/tmp/preemptd-never']);
  expect(neither.code).toBe(64);
  expect(neither.stderr).toContain('name the snapshot: --from LOCATION or --latest PREFIX');
  const both = await runCli(['restore', '--from', 'file:///tmp/x/', '--latest', 'file:///tmp/x/', '--to', '/tmp/preemptd-never']);
  expect(both.code).toBe(64);
  expect(both.stderr).toContain('mutually exclusive');
  const empty = resources.tempDir();
  const none = await runCli(['restore', '--latest', `file://${empty}/`, '--to', join(empty, 'out')]);
  expect(none.code).toBe(1);
  expect(none.stderr + none.stdout).toContain('has no latest.json: no complete dedup snapshot was committed there');
});

test('an invalid config exits 78 naming the file, the field and what was expected; nothing starts', async () => {
  const dir = resources.tempDir();
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
  const file = join(resources.tempDir(), 'absent.yaml');
  const result = await runCli(['run', '--config', file]);
  expect(result.code).toBe(78);
  expect(result.stderr).toContain(file);
});

test('a webhook URL taken from ${env:...} is used but never appears in the logs', async () => {
  const metadata = await resources.simulator({ provider: 'aws' });
  const hooks = await resources.receiver({ status: 204 });
  const secretPath = '/services/T000/B000/sEcReT-tOkEn-8f2a91';
  const file = writeAgentConfig(resources.tempDir(), {
    metadataUrl: metadata.url,
    steps: ['  - name: tell-ops', '    webhook: { url: "${env:HOOK_URL}", send: both }'],
  });
  const running = resources.agent(['--config', file, '--log-level', 'trace'], { HOOK_URL: hooks.url(secretPath) });
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
  const metadata = await resources.simulator({ provider: 'aws' });
  const dir = resources.tempDir();
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `provider: gcp\nmetadataUrl: http://127.0.0.1:9\nserver: { enabled: false }\nstateDir: ${join(dir, 'state')}\nsteps: []\n`);
  const running = resources.agent(['--config', file, '--metadata-url', metadata.url, '--set', 'pollInterval=100ms'], { PREEMPTD_PROVIDER: 'aws', PREEMPTD_METADATA_URL: 'http://127.0.0.1:10' });
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
  const metadata = await resources.simulator({ provider: 'aws' });
  const hooks = await resources.receiver({ status: 204 });
  const dir = resources.tempDir();
  const file = writeAgentConfig(dir, {
    metadataUrl: metadata.url,
    steps: [
      `  - { name: tell-ops, webhook: { url: "${hooks.url('/notice')}" } }`,
      '  - { name: long-drain, exec: { command: [sleep, "3"] } }',
      `  - { name: after-drain, after: [long-drain], webhook: { url: "${hooks.url('/after-drain')}" } }`,
    ],
  });
  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  const first = resources.agent(['--config', file]);
  await hooks.waitFor(1);
  // Wait until the journal holds tell-ops as finished, then kill the agent mid-plan.
  const journalFile = join(dir, 'state', 'journal.json');
  const started = Date.now();
  while (!safeRead(journalFile).includes('tell-ops') && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 25));
  first.child.kill('SIGKILL');
  await first.exited;
  expect(hooks.requests.map((request) => request.path)).toEqual(['/notice']);

  const second = resources.agent(['--config', file]);
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
