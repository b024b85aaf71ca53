import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig } from '../helpers/config.js';
import { compileConfig } from '../helpers/config.js';
import type { Config } from '../../src/config/types.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import { ConfigReloader } from '../../src/daemon/reload.js';
import { startSimulator } from '../../src/simulator/metadata-server.js';
import { startAgent, type AgentProcess } from '../helpers/cli.js';
import { startReceiver } from '../helpers/receiver.js';
import { scriptedNotice } from '../helpers/scripted-notice.js';
import { ScriptedProvider } from '../helpers/scripted-provider.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-reload-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(file: string, config: Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(config));
}

function capturingLogger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino(sink), lines };
}

describe('ConfigReloader', () => {
  test('applies a good config and refuses a bad one with a clear log line, keeping the old config', async () => {
    const dir = tempDir();
    const file = join(dir, 'config.yaml');
    writeConfig(file, { stateDir: dir, safetyMargin: '5s' });
    const { log, lines } = capturingLogger();
    const applied: Config[] = [];
    const load = () => loadConfig({ file, env: {} });
    const reloader = new ConfigReloader({ load, apply: (config) => applied.push(config), log, current: await load() });

    writeConfig(file, { stateDir: dir, safetyMargin: '8s' });
    expect(await reloader.reload()).toBe('applied');
    expect(applied.map((config) => config.safetyMarginMs)).toEqual([8000]);
    expect(lines.at(-1)?.msg).toMatch(/^config reloaded: safetyMargin changed/);

    writeConfig(file, { stateDir: dir, safetyMargin: 'later' });
    expect(await reloader.reload()).toBe('refused');
    expect(applied).toHaveLength(1);
    const refusal = lines.at(-1)!;
    expect(refusal.level).toBe(50);
    expect(refusal.msg).toMatch(/^config reload refused; still running the previous config: invalid config .*config\.yaml:\n {2}safetyMargin: got "later"/);

    expect(await reloader.reload()).toBe('refused');
    writeConfig(file, { stateDir: dir, safetyMargin: '8s' });
    expect(await reloader.reload()).toBe('unchanged');
  });

  test('a changed setting read only at start keeps its running value, with a warning naming it', async () => {
    const dir = tempDir();
    const file = join(dir, 'config.yaml');
    writeConfig(file, { stateDir: dir, pollInterval: '1s', aws: { tokenTimeout: '2s' } });
    const { log, lines } = capturingLogger();
    const applied: Config[] = [];
    const load = () => loadConfig({ file, env: {} });
    const running = await load();
    const reloader = new ConfigReloader({ load, apply: (config) => applied.push(config), log, current: running });

    writeConfig(file, { stateDir: join(dir, 'elsewhere'), pollInterval: '3s', aws: { tokenTimeout: '5s' }, minimumBudget: '30s' });
    expect(await reloader.reload()).toBe('applied');
    expect(applied).toHaveLength(1);
    expect(applied[0]).toEqual({ ...running, minimumBudgetMs: 30_000 });
    expect(reloader.current).toBe(applied[0]);
    const warning = lines.at(-1)!;
    expect(warning.level).toBe(40);
    expect(warning.restartNeeded).toEqual(['pollInterval', 'stateDir', 'aws.tokenTimeout']);
    expect(warning.msg).toBe(
      'config reloaded, but pollInterval, stateDir, aws.tokenTimeout changed: these take effect only after a restart and keep their running values until then',
    );
    expect(lines.at(-2)?.msg).toMatch(/^config reloaded: minimumBudget changed/);
  });
});

test('a reload never touches a plan in progress: it keeps its steps, the next notice gets the new ones', async () => {
  const held: ServerResponse[] = [];
  const drain = createServer((request, response) => {
    request.resume();
    held.push(response);
  });
  await new Promise<void>((resolve) => drain.listen(0, '127.0.0.1', resolve));
  const drainUrl = `http://127.0.0.1:${(drain.address() as AddressInfo).port}`;
  cleanups.push(() => {
    held.forEach((response) => response.destroy());
    drain.closeAllConnections();
    return new Promise<void>((resolve) => drain.close(() => resolve()));
  });
  const stateDir = tempDir();
  const provider = new ScriptedProvider();
  const daemon = createDaemon({
    config: compileConfig({ stateDir, steps: [{ name: 'old-drain', http: { url: `${drainUrl}/old`, method: 'POST' } }] }),
    log: silentLogger(),
    provider,
  });
  const finished: string[][] = [];
  daemon.on('planFinished', (_notice, result) => finished.push(result.steps.map((step) => `${step.name}:${step.status}`)));
  const running = daemon.run();
  cleanups.push(async () => {
    await daemon.stop();
    await running;
  });
  while (!provider.watching) await new Promise((resolve) => setTimeout(resolve, 10));

  provider.notice(scriptedNotice('terminate', 120_000));
  while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  daemon.reload(compileConfig({ stateDir, steps: [{ name: 'new-drain', http: { url: `${drainUrl}/new`, method: 'POST' } }] }));
  held.shift()!.writeHead(204).end();
  while (finished.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(finished[0]).toEqual(['old-drain:ok']);

  provider.notice(scriptedNotice('terminate', 120_000));
  while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  held.shift()!.writeHead(204).end();
  while (finished.length === 1) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(finished[1]).toEqual(['new-drain:ok']);
});

describe('preemptd run (a real child process)', () => {
  async function agent(config: Record<string, unknown>): Promise<{ agent: AgentProcess; file: string }> {
    const dir = tempDir();
    const file = join(dir, 'config.yaml');
    writeConfig(file, { stateDir: join(dir, 'state'), server: { enabled: false }, ...config });
    const running = startAgent(['--config', file]);
    cleanups.push(async () => {
      if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
      await running.exited;
    });
    await running.waitForLog((line) => line.msg === 'daemon watching');
    return { agent: running, file };
  }

  test('SIGHUP applies a good config to the next notice, refuses a bad one and keeps running', async () => {
    const metadata = await startSimulator({ provider: 'aws' });
    cleanups.push(() => metadata.close());
    const hooks = await startReceiver({ status: 204 });
    cleanups.push(() => hooks.close());
    const base = { provider: 'aws', metadataUrl: metadata.url, pollInterval: '100ms' };
    const { agent: running, file } = await agent({ ...base, steps: [{ name: 'hook', webhook: { url: hooks.url('/before') } }] });
    const dir = join(file, '..');

    writeConfig(file, { ...base, stateDir: join(dir, 'state'), server: { enabled: false }, steps: [{ name: 'hook', webhook: { url: hooks.url('/after') } }] });
    running.child.kill('SIGHUP');
    await running.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('config reloaded: steps changed'));

    writeFileSync(file, 'steps: [\n');
    running.child.kill('SIGHUP');
    const refused = await running.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('config reload refused'));
    expect(refused.level).toBe('error');
    expect(String(refused.msg)).toContain('config.yaml');
    expect(running.child.exitCode).toBeNull();

    metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
    await hooks.waitFor(1, 10_000);
    expect(hooks.requests.map((request) => request.path)).toEqual(['/after']);
  });

  test('SIGTERM with no plan running exits 0 within 2 s, cancelling a metadata request in flight', async () => {
    // Answers the token, then holds every GET: the agent always has a request in flight.
    const imds = createServer((request, response) => {
      if (request.method === 'PUT') response.end('token');
    });
    await new Promise<void>((resolve) => imds.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      imds.closeAllConnections();
      return new Promise<void>((resolve) => imds.close(() => resolve()));
    });
    const inFlight = new Promise<void>((resolve) => imds.on('request', (request) => request.method === 'GET' && resolve()));
    const { agent: running } = await agent({ provider: 'aws', metadataUrl: `http://127.0.0.1:${(imds.address() as AddressInfo).port}`, requestTimeout: '60s' });
    await inFlight;

    const signalledAt = Date.now();
    running.child.kill('SIGTERM');
    const code = await running.exited;
    const tookMs = Date.now() - signalledAt;
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(2000);
    expect(running.lines().at(-1)?.msg).toBe('preemptd stopped');
  });

  test('SIGINT stops it the same way', async () => {
    const metadata = await startSimulator({ provider: 'aws' });
    cleanups.push(() => metadata.close());
    const { agent: running } = await agent({ provider: 'aws', metadataUrl: metadata.url });
    running.child.kill('SIGINT');
    expect(await running.exited).toBe(0);
    expect(running.lines().some((line) => line.msg === 'daemon stopped')).toBe(true);
  });
});
