import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startSimulator, type RunningSimulator } from '../src/simulator/metadata-server.js';
import { timeProcess } from './cli-startup.bench.js';
import { spawnAgent, stopChildren } from './lib/agent-process.js';
import { flag, flags } from './lib/args.js';
import { baselineBuild, baselineRev, bundleBuild, diskMb, revisionBundleBuild, type Build } from './lib/builds.js';
import { startNotifySocket } from './lib/notify-socket.js';
import { processCpuSeconds, processRssMb, summarise } from './lib/stats.js';
import { bareNode, startToReady } from './startup-ready.bench.js';

/**
 * The bundle against today's build, side by side in one run (issue 17, "Start-up and memory"):
 * today's build is `--baseline REV` (default: ISSUE_17_BASELINE, the build the issue measured) compiled by tsc in a
 * temp dir (bench/lib/builds.ts); the bundle is dist/bundle.
 *   1. READY p50: process start -> READY=1 against the AWS simulator, each build with a warm
 *      compile cache of its own (as the systemd unit runs it), interleaved, `--runs` each.
 *   2. `preemptd --help` p50, warm compile cache, interleaved.
 *   3. Idle: both agents (three steps, 1 s poll) on an instance in no Auto Scaling group, the
 *      bundle again in a group, and a plain got loop, each against its own simulator, for
 *      `--seconds` (600 for the documented figure; 0 skips it): RSS, CPU per poll.
 *   4. Production install size (du): today's install-production.sh against install-bundle.sh.
 * Goals: READY and --help <= 0.5x today's, idle RSS <= 70 MB, CPU per poll <= 0.6x the got
 * loop, install <= 40 % of today's.
 * Each `--node-flags "FLAGS"` (may be repeated) adds the bundle run by `node FLAGS` to 1-3, side
 * by side with the others: V8 flags for the agent's node, measured before they ship. Each
 * `--bundle-of REV` adds REV's bundle the same way: a change to the bundle against the one before.
 *
 * npm run bench -- bundle [--baseline REV] [--runs 20] [--seconds 600] [--node-flags "--flag ..."]... [--bundle-of REV]...
 */
const POLL_PATH = '/latest/meta-data/spot/instance-action';

export default async function main(args: string[]): Promise<void> {
  const runs = Number(flag(args, '--runs') ?? 20);
  const seconds = Number(flag(args, '--seconds') ?? 600);
  const rev = baselineRev(flag(args, '--baseline'));
  console.log(`building today's build (${rev}) with tsc...`);
  const variants = [
    ...flags(args, '--node-flags').map((given) => bundleBuild(given.split(' ').filter(Boolean))),
    ...flags(args, '--bundle-of').map((given) => revisionBundleBuild(given)),
  ];
  const builds = [baselineBuild(rev), bundleBuild(), ...variants];
  const work = mkdtempSync(join(tmpdir(), 'preemptd-bench-bundle-'));
  try {
    const [today, bundle] = builds as [Build, Build];
    const ratio = (label: string, values: Map<Build, number>, goal: string) =>
      console.log(`${label}: ${[...values.keys()].filter((build) => build !== today).map((build) => `${build.label}/today = ${(values.get(build)! / values.get(today)!).toFixed(2)}`).join(', ')} (${goal})`);
    ratio('READY=1 p50', await readyP50(builds, runs, work), 'goal <= 0.5');
    ratio('--help p50', await helpP50(builds, runs, work), 'goal <= 0.5');
    if (seconds > 0) await idle(builds, seconds, work);
    // Node flags change no file: the variants install what the bundle does.
    const sizes = new Map([today, bundle].map((build) => {
      const dest = join(work, `install-${builds.indexOf(build)}`);
      build.install(dest);
      const mb = diskMb(dest);
      console.log(`install ${build.label.padEnd(28)} ${mb.toFixed(1)} MB`);
      return [build, mb];
    }));
    ratio('install size', sizes, 'goal <= 0.4');
  } finally {
    for (const build of builds) build.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

function report(label: string, values: number[], note = ''): number {
  const figures = summarise(values);
  console.log(`${label.padEnd(36)} p50=${figures.p50.toFixed(1)}ms p90=${figures.p90.toFixed(1)}ms p99=${figures.p99.toFixed(1)}ms max=${figures.max.toFixed(1)}ms ${note}`);
  return figures.p50;
}

async function readyP50(builds: Build[], runs: number, work: string): Promise<Map<Build, number>> {
  const simulator = await startSimulator({ provider: 'aws' });
  const socket = await startNotifySocket();
  try {
    const cache = (build: Build) => ({ NODE_COMPILE_CACHE: join(work, `ready-cache-${builds.indexOf(build)}`) });
    const times = new Map<Build, number[]>(builds.map((build) => [build, []]));
    const bare: number[] = [];
    // The first start fills each build's compile cache, as a service's first start does.
    for (const build of builds) await startToReady(socket, simulator.url, join(work, `warm-${builds.indexOf(build)}`), cache(build), build.cli, build.nodeArgs);
    for (let run = 0; run < runs; run += 1) {
      for (const build of builds) {
        times.get(build)!.push((await startToReady(socket, simulator.url, join(work, `ready-${builds.indexOf(build)}-${run}`), cache(build), build.cli, build.nodeArgs)).wallMs);
      }
      bare.push(await bareNode());
    }
    console.log(`READY=1 (process start -> READY=1, AWS simulator, compile cache warm), ${runs} runs each`);
    report('node -e 0', bare, '(floor)');
    return new Map(builds.map((build) => [build, report(`preemptd run, ${build.label}`, times.get(build)!)]));
  } finally {
    await socket.close();
    await simulator.close();
  }
}

async function helpP50(builds: Build[], runs: number, work: string): Promise<Map<Build, number>> {
  const env = (build: Build) => ({ ...process.env, NODE_COMPILE_CACHE: join(work, `help-cache-${builds.indexOf(build)}`) });
  const times = new Map<Build, number[]>(builds.map((build) => [build, []]));
  const help = (build: Build) => timeProcess([...build.nodeArgs, build.cli, '--help'], env(build));
  for (const build of builds) await help(build);
  for (let run = 0; run < runs; run += 1) for (const build of builds) times.get(build)!.push(await help(build));
  console.log(`preemptd --help (spawn -> exit, compile cache warm), ${runs} runs each`);
  return new Map(builds.map((build) => [build, report(`--help, ${build.label}`, times.get(build)!)]));
}

interface Idler {
  label: string;
  child: ChildProcess;
  simulator: RunningSimulator;
}

async function idle(builds: Build[], seconds: number, work: string): Promise<void> {
  const idlers: Idler[] = [];
  // The common case is an instance in no Auto Scaling group (lifecycle item 404, read once a
  // minute); in a group the agent reads that item every poll too, which is its own line.
  const bundle = builds[1]!;
  const agents = [...builds.map((build) => ({ build, label: build.label, inAutoScalingGroup: false })), { build: bundle, label: `${bundle.label}, in an ASG`, inAutoScalingGroup: true }];
  try {
    for (const [index, { build, label, inAutoScalingGroup }] of agents.entries()) {
      const simulator = await startSimulator({ provider: 'aws', inAutoScalingGroup });
      const dir = join(work, `idle-${index}`);
      mkdirSync(dir);
      const child = spawnAgent(dir, {
        cli: build.cli,
        nodeArgs: build.nodeArgs,
        metadataUrl: simulator.url,
        settings: [
          'pollInterval: 1s',
          'server: { listen: "127.0.0.1:0" }',
          'steps:',
          '  - { name: tell-ops, webhook: { url: "http://127.0.0.1:9/hook" } }',
          '  - { name: drain, http: { url: "http://127.0.0.1:9/drain" } }',
          '  - { name: stop, signal: { pidfile: /run/none.pid, signal: SIGTERM } }',
        ],
        runArgs: ['--log-level', 'warn'],
      });
      idlers.push({ label, child, simulator });
    }
    const simulator = await startSimulator({ provider: 'aws', inAutoScalingGroup: false });
    idlers.push({ label: 'plain got loop', simulator, child: spawn(process.execPath, [fileURLToPath(new URL('./lib/got-poller.js', import.meta.url)), simulator.url], { stdio: 'inherit' }) });
    // Start-up (module loading) is not idle cost: measure from a warm start.
    await sleep(5000);
    const start = idlers.map(({ child, simulator }) => ({ cpu: processCpuSeconds(child.pid!), polls: simulator.requests.get(POLL_PATH) ?? 0 }));
    console.log(`idle: ${seconds} s at a 1 s poll, side by side`);
    for (let elapsed = 0; elapsed < seconds; elapsed += 60) {
      await sleep(Math.min(60, seconds - elapsed) * 1000);
      console.log(`  t=${Math.min(elapsed + 60, seconds)}s RSS ${idlers.map(({ label, child }) => `${label} ${processRssMb(child.pid!).toFixed(1)} MB`).join(', ')}`);
    }
    const perPoll = idlers.map(({ label, child, simulator }, index) => {
      const polls = (simulator.requests.get(POLL_PATH) ?? 0) - start[index]!.polls;
      const cpuMs = ((processCpuSeconds(child.pid!) - start[index]!.cpu) / polls) * 1000;
      console.log(`  ${label.padEnd(28)} ${polls} polls, ${cpuMs.toFixed(3)} ms CPU per poll, RSS ${processRssMb(child.pid!).toFixed(1)} MB`);
      return cpuMs;
    });
    const got = perPoll.at(-1)!;
    console.log(`idle CPU per poll / got loop: ${idlers.slice(0, -1).map(({ label }, index) => `${label} ${(perPoll[index]! / got).toFixed(2)}`).join(', ')} (goal <= 0.6); RSS goal <= 70 MB`);
  } finally {
    await stopChildren(...idlers.map(({ child }) => child));
    await Promise.all(idlers.map(({ simulator }) => simulator.close()));
  }
}
