import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../src/config/schema.js';
import { STEP_TYPES } from '../src/steps/registry.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/lib/log.js';
import type { NoticeKind, ProviderName } from '../src/notice/notice.js';
import type { TriggerSpec } from '../src/simulator/cloud.js';
import { simulatedCloud } from '../src/simulator/clouds.js';
import { startSimulator, type RunningSimulator } from '../src/simulator/metadata-server.js';
import { flag } from './lib/args.js';
import { runInLanes } from './lib/lanes.js';
import { summarise } from './lib/stats.js';

/**
 * Detection latency: from the moment the simulator shows a notice to the moment the
 * first plan step starts. Several agents run side by side (each with its own simulator)
 * so 200 trials at a 1 s poll take under a minute; each trial shows a fresh notice at a
 * random moment relative to the agent's poll phase.
 *
 * npm run bench -- detection-latency [aws aws-asg aws-hibernate gcp gcp-upcoming azure alibaba tencent] [--trials N] [--lanes N]
 */
/**
 * Agents measured side by side in this one process. Polling clouds need lanes to finish
 * 200 trials at 1 s in reasonable time; GCP's hanging GET answers in milliseconds, where
 * other lanes' start-up work on the shared event loop would be measured as latency.
 */
const DEFAULT_LANES: Record<ProviderName, number> = { aws: 10, gcp: 1, azure: 10, alibaba: 10, tencent: 10 };
const GOALS: Partial<Record<ProviderName, string>> = { aws: 'p50 <= 550 ms, p99 <= 1050 ms', gcp: 'p99 <= 50 ms' };

/** What one run measures: a cloud's spot notice (named by the provider), or another source of it. */
interface Source {
  provider: ProviderName;
  /** The notice to show in trial `serial`. */
  trigger(serial: number): TriggerSpec;
  /** The notice kinds the measured step runs on (an advisory one needs its `on:`). */
  on?: NoticeKind[];
}

/** Sources beyond each cloud's spot notice. */
const EXTRA_SOURCES: Record<string, Source> = {
  // Each trial's agent is fresh (new journal), so the same lifecycle id is a new notice to it.
  'aws-asg': { provider: 'aws', trigger: () => ({ kind: 'terminate', action: 'autoscaling' }) },
  'aws-hibernate': { provider: 'aws', trigger: () => ({ kind: 'hibernate' }) },
  // instance/upcoming-maintenance: advisory, due at a window an hour out.
  'gcp-upcoming': { provider: 'gcp', trigger: (serial) => ({ kind: 'maintenance', action: 'upcoming', leadMs: 3_600_000 + serial * 1000 }), on: ['maintenance'] },
};

function sourceNamed(name: string): Source {
  // A distinct notice time per trial gives a distinct notice id, so dedupe never hides a trial.
  return EXTRA_SOURCES[name] ?? { provider: name as ProviderName, trigger: (serial) => ({ kind: simulatedCloud(name as ProviderName).defaultKind, leadMs: 120_000 + serial * 1000 }) };
}

export default async function main(args: string[]): Promise<void> {
  const trials = Number(flag(args, '--trials') ?? 200);
  const lanesFlag = flag(args, '--lanes');
  const names = args.filter((arg) => !arg.startsWith('--') && !/^\d+$/.test(arg));
  for (const name of names.length ? names : ['aws', 'gcp']) {
    const source = sourceNamed(name);
    const latencies = await runInLanes(trials, Number(lanesFlag ?? DEFAULT_LANES[source.provider]), (lane, count) => runLane(source, lane, count));
    const figures = summarise(latencies);
    console.log(
      `${name.padEnd(13)} trials=${figures.n} p50=${figures.p50.toFixed(1)}ms p90=${figures.p90.toFixed(1)}ms p99=${figures.p99.toFixed(1)}ms max=${figures.max.toFixed(1)}ms  goal: ${GOALS[source.provider] ?? 'as AWS'}`,
    );
  }
}

async function runLane(source: Source, lane: number, count: number): Promise<number[]> {
  const { provider } = source;
  const latencies: number[] = [];
  const simulator = await startSimulator({ provider });
  try {
    for (let trial = 0; trial < count; trial += 1) {
      // A fresh agent and journal per trial: some clouds (GCP) give a VM's preemption one
      // stable id, which a long-lived agent would rightly handle only once.
      const stateDir = mkdtempSync(join(tmpdir(), `preemptd-bench-${provider}-${lane}-`));
      const config = compileConfig(
        { provider, metadataUrl: simulator.url, pollInterval: '1s', stateDir, steps: [{ name: 'first', ...(source.on ? { on: source.on } : {}), exec: { command: ['true'] } }] },
        { stepTypes: STEP_TYPES },
      );
      const daemon = createDaemon({ config, log: silentLogger() });
      const running = daemon.run();
      await waitFor(() => daemon.health().lastSuccessAt !== null);
      // A random moment relative to the poll phase, as a real notice would arrive.
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 1000));
      latencies.push(await oneTrial(daemon, simulator, source.trigger(lane * 100_000 + trial)));
      await daemon.stop();
      await running;
      simulator.clear();
      rmSync(stateDir, { recursive: true, force: true });
    }
  } finally {
    await simulator.close();
  }
  return latencies;
}

function oneTrial(daemon: Daemon, simulator: RunningSimulator, trigger: TriggerSpec): Promise<number> {
  return new Promise((resolve) => {
    let shownAt = 0;
    daemon.once('stepStarted', () => resolve(performance.now() - shownAt));
    shownAt = performance.now();
    simulator.trigger(trigger);
  });
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}
