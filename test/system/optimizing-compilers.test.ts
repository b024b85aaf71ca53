import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startSimulator } from '../../src/simulator/metadata-server.js';
import { CLI } from '../helpers/cli.js';

/**
 * `preemptd run` leaves V8's optimizing compilers off (src/lib/optimizing-compilers.ts); the
 * other commands keep them. A probe loaded before the CLI (--import) runs a hot function once
 * told on stdin, after the command started, and prints V8's optimization status of it
 * (--allow-natives-syntax): bit 16 optimized, 32 Maglev, 64 TurboFan.
 */
const OPTIMIZED = 16 | 32 | 64;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const PROBE = `
process.stdin.once('data', () => {
  function hot(x) { return (x * 31 + 7) % 1000003; }
  let sum = 0;
  for (let i = 0; i < 5e6; i += 1) sum += hot(i);
  process.stderr.write('optimization status ' + %GetOptimizationStatus(hot) + ' ' + sum + '\\n');
});
`;

/** Starts `preemptd <args>` with the probe, waits for `ready` on stdout, and resolves to the hot function's status. */
async function statusUnder(args: string[], ready: RegExp): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-compilers-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const probe = join(dir, 'probe.mjs');
  writeFileSync(probe, PROBE);
  const child = spawn(process.execPath, ['--allow-natives-syntax', '--import', probe, CLI, ...args], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let output = '';
  const status = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      output += `${line}\n`;
      const found = /^optimization status (\d+) /.exec(line);
      if (found) resolve(Number(found[1]));
    });
    child.on('exit', (code) => reject(new Error(`preemptd ${args.join(' ')} exited (${String(code)}) before the probe ran:\n${output}`)));
  });
  // Rejected below as well when the command exits before it is ready: handled there.
  status.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      if (ready.test(line)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`preemptd ${args.join(' ')} exited (${String(code)}) before it was ready:\n${output}`)));
  });
  child.stdin!.write('go\n');
  return status;
}

async function configFile(config: (dir: string) => Record<string, unknown>): Promise<string> {
  const metadata = await startSimulator({ provider: 'aws' });
  cleanups.push(() => metadata.close());
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-compilers-config-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, JSON.stringify({ provider: 'aws', metadataUrl: metadata.url, stateDir: join(dir, 'state'), server: { enabled: false }, ...config(dir) }));
  return file;
}

test('an agent that polls and signals runs without the optimizing compilers; another long-running command (the simulator) keeps them', async () => {
  const config = await configFile(() => ({ steps: [{ name: 'stop', signal: { pidfile: '/run/none.pid', signal: 'SIGTERM' } }] }));
  const agent = await statusUnder(['run', '--config', config], /daemon watching/);
  expect(agent & 1).toBe(1);
  expect(agent & OPTIMIZED).toBe(0);

  const simulator = await statusUnder(['simulator', '--port', '0'], /listening|127\.0\.0\.1/);
  expect(simulator & OPTIMIZED).not.toBe(0);
}, 30_000);

test('an agent whose config moves data (a snapshot step, a background sync) turns them on', async () => {
  const snapshot = await configFile((dir) => ({ steps: [{ name: 'save', snapshot: { paths: [join(dir, 'ckpt')], to: `file://${dir}/store/` } }] }));
  expect((await statusUnder(['run', '--config', snapshot], /daemon watching/)) & OPTIMIZED).not.toBe(0);

  const sync = await configFile((dir) => ({ steps: [], sync: { ckpt: { paths: [join(dir, 'ckpt')], to: `file://${dir}/store/` } } }));
  expect((await statusUnder(['run', '--config', sync], /daemon watching/)) & OPTIMIZED).not.toBe(0);
}, 30_000);
