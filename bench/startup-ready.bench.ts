import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '../src/simulator/metadata-server.js';
import { startNotifySocket, type NotifySocket } from './lib/notify-socket.js';
import { processCpuSeconds, summarise } from './lib/stats.js';

/**
 * Start-up to READY=1: from spawning `preemptd run` (the built CLI, as systemd starts it)
 * to READY=1 reaching a notification socket, against the AWS simulator: config loaded,
 * provider set up, journal opened, local server listening, watch started (READY=1 does not
 * wait for the first metadata answer).
 * Side by side in the same run: the agent with Node's compile cache (as the systemd unit
 * and the image run it, the cache warmed by the first start), the agent without it, and a
 * bare `node -e 0` (start and exit), so the ratio shows what the agent adds to Node's own
 * start-up on this machine. The agent's CPU time (user + system) up to READY=1 is printed
 * too: unlike wall time it barely grows when other work shares the cores.
 *
 * npm run bench -- startup-ready [--runs N]
 */
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const GOAL_MS = 400;

export default async function main(args: string[]): Promise<void> {
  const index = args.indexOf('--runs');
  const runs = index >= 0 ? Number(args[index + 1]) : 20;
  const simulator = await startSimulator({ provider: 'aws' });
  const socket = await startNotifySocket();
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-bench-ready-'));
  const cache = join(dir, 'compile-cache');
  try {
    const cached: number[] = [];
    const cachedCpu: number[] = [];
    const uncached: number[] = [];
    const bare: number[] = [];
    // The first start fills the compile cache, as a service's first start does.
    await startToReady(socket, simulator.url, join(dir, 'warm-up'), { NODE_COMPILE_CACHE: cache });
    for (let run = 0; run < runs; run += 1) {
      // Interleaved so drift on this shared machine favours no side.
      const withCache = await startToReady(socket, simulator.url, join(dir, `cached-${run}`), { NODE_COMPILE_CACHE: cache });
      cached.push(withCache.wallMs);
      cachedCpu.push(withCache.cpuMs);
      uncached.push((await startToReady(socket, simulator.url, join(dir, `uncached-${run}`), {})).wallMs);
      bare.push(await bareNode());
    }
    const line = (label: string, values: number[], note: string) => {
      const figures = summarise(values);
      console.log(`${label.padEnd(26)} p50=${figures.p50.toFixed(1)}ms p90=${figures.p90.toFixed(1)}ms max=${figures.max.toFixed(1)}ms  ${note}`);
      return figures.p50;
    };
    console.log(`runs=${runs} each (process start -> READY=1, AWS simulator)`);
    const withCache = line('preemptd run (cache)', cached, `goal: p50 <= ${GOAL_MS} ms`);
    line('  CPU time to READY=1', cachedCpu, '(user + system, 10 ms ticks)');
    const withoutCache = line('preemptd run (no cache)', uncached, '');
    const node = line('node -e 0', bare, '(start and exit)');
    console.log(`ratio p50: cache/node = ${(withCache / node).toFixed(2)}, no cache/node = ${(withoutCache / node).toFixed(2)}, cache/no cache = ${(withCache / withoutCache).toFixed(2)}`);
  } finally {
    await socket.close();
    await simulator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One start of `preemptd run` (of `cli`, this tree's dist/src/cli.js unless named) until READY=1. */
export async function startToReady(socket: NotifySocket, metadataUrl: string, dir: string, env: NodeJS.ProcessEnv, cli = CLI, nodeArgs: string[] = []): Promise<{ wallMs: number; cpuMs: number }> {
  const config = `${dir}.yaml`;
  writeFileSync(
    config,
    [`provider: aws`, `metadataUrl: ${metadataUrl}`, `stateDir: ${dir}`, 'server: { listen: "127.0.0.1:0" }', 'logLevel: warn', 'steps: []'].join('\n'),
  );
  const seen = socket.messages.length;
  const started = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'run', '--config', config], {
    env: { ...process.env, NODE_COMPILE_CACHE: undefined, ...env, NOTIFY_SOCKET: socket.path },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const ready = await socket.waitFor((message) => message.fields.READY === '1' && socket.messages.indexOf(message) >= seen, 15_000);
    return { wallMs: ready.at - started, cpuMs: processCpuSeconds(child.pid!) * 1000 };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

export function bareNode(): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', () => resolve(performance.now() - started)));
}
