import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { compileConfig } from '../src/config/schema.js';
import { STEP_TYPES } from '../src/steps/registry.js';
import { flag } from './lib/args.js';
import { runPlanForNotice } from './lib/run-plan.js';
import { summarise } from './lib/stats.js';

/**
 * Signal fan-out: N processes (plain `sleep`, which exits at once on SIGTERM) matched by a
 * `signal: { match }` step and confirmed exited, timed from step start to done through the
 * real executor. Baseline: what a hand-written script does, `pkill -f` then `pgrep -f`
 * every 10 ms until none is left. Goal: <= 100 ms for 200 processes.
 *
 * npm run bench -- signal-fanout [--processes 200] [--rounds 5]
 */
const run = promisify(execFile);

export default async function main(args: string[]): Promise<void> {
  const count = Number(flag(args, '--processes') ?? 200);
  const rounds = Number(flag(args, '--rounds') ?? 5);
  const agent: number[] = [];
  const baseline: number[] = [];
  for (let round = 0; round < rounds; round++) {
    agent.push(await timeStep(`preemptd-fanout-${process.pid}-${round}-step`, count));
    baseline.push(await timePkill(`preemptd-fanout-${process.pid}-${round}-pkill`, count));
  }
  const a = summarise(agent);
  const b = summarise(baseline);
  console.log(`processes=${count} rounds=${rounds}`);
  console.log(`signal step  p50=${a.p50.toFixed(1)}ms max=${a.max.toFixed(1)}ms  goal: <= 100 ms`);
  console.log(`pkill+pgrep  p50=${b.p50.toFixed(1)}ms max=${b.max.toFixed(1)}ms  (baseline)`);
  console.log(`ratio step/baseline p50=${(a.p50 / b.p50).toFixed(2)}`);
}

/** Starts `count` sleepers whose argv[0] is `marker`, so only they match it. */
async function startSleepers(marker: string, count: number): Promise<ChildProcess[]> {
  const children = Array.from({ length: count }, () => spawn('sleep', ['3600'], { argv0: marker, stdio: 'ignore' }));
  await Promise.all(children.map((child) => once(child, 'spawn')));
  return children;
}

async function timeStep(marker: string, count: number): Promise<number> {
  const children = await startSleepers(marker, count);
  const config = compileConfig({ provider: 'aws', steps: [{ name: 'stop-workers', signal: { match: marker, waitExit: '10s' } }] }, { stepTypes: STEP_TYPES });
  const result = await runPlanForNotice(config, marker);
  const step = result.steps[0]!;
  const exited = (step.detail?.counts as { exited?: number } | undefined)?.exited;
  if (step.status !== 'ok' || exited !== count) {
    children.forEach((child) => child.kill('SIGKILL'));
    throw new Error(`signal step did not confirm ${count} exits: ${step.status} ${step.error ?? ''} ${JSON.stringify(step.detail?.counts)}`);
  }
  return step.ms;
}

async function timePkill(marker: string, count: number): Promise<number> {
  await startSleepers(marker, count);
  const started = performance.now();
  // The marker comes through the environment so the shell's own command line never matches.
  await run('sh', ['-c', 'pkill -f "$MARKER"; while pgrep -f "$MARKER" >/dev/null; do sleep 0.01; done'], {
    env: { ...process.env, MARKER: marker },
  });
  return performance.now() - started;
}
