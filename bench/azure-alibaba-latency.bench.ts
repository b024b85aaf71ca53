import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger } from '../src/lib/log.js';
import type { ProviderName } from '../src/notice/notice.js';
import { createProvider } from '../src/providers/registry.js';
import type { ProviderOptions } from '../src/providers/types.js';
import { simulatedCloud } from '../src/simulator/clouds.js';
import { startSimulator, type RunningSimulator } from '../src/simulator/metadata-server.js';
import { flag } from './lib/args.js';
import { runInLanes } from './lib/lanes.js';
import { summarise } from './lib/stats.js';

/**
 * Provider-level detection latency: from the moment the simulator shows a notice to the
 * moment the provider yields it, polling at 1 s. No daemon, journal or plan: this is the
 * provider alone. Lanes run side by side, each with its own simulator (Azure's 5 requests
 * per second limit is per client, and every lane is 127.0.0.1), so 200 trials take about
 * 200 / lanes seconds. AWS runs in the same process as the reference.
 *
 * npm run bench -- azure-alibaba-latency [provider...] [--trials N] [--lanes N]
 */
const POLL_MS = 1000;

export default async function main(args: string[]): Promise<void> {
  const trials = Number(flag(args, '--trials') ?? 200);
  const lanes = Number(flag(args, '--lanes') ?? 10);
  const named = args.filter((arg, index) => !arg.startsWith('--') && !args[index - 1]?.startsWith('--')) as ProviderName[];
  const providers = named.length ? named : (['azure', 'alibaba', 'aws'] as ProviderName[]);
  console.log(`detection latency, trigger → notice yielded by the provider; poll ${POLL_MS} ms; ${trials} trials in ${lanes} lanes`);
  const medians = new Map<ProviderName, number>();
  for (const provider of providers) {
    const figures = summarise(await runInLanes(trials, lanes, (lane, count) => runLane(provider, lane, count)));
    medians.set(provider, figures.p50);
    console.log(
      `${provider.padEnd(8)} n=${figures.n} p50=${figures.p50.toFixed(1)}ms p90=${figures.p90.toFixed(1)}ms p99=${figures.p99.toFixed(1)}ms max=${figures.max.toFixed(1)}ms mean=${figures.mean.toFixed(1)}ms`,
    );
  }
  const reference = medians.get('aws');
  if (reference !== undefined) {
    for (const [provider, p50] of medians) if (provider !== 'aws') console.log(`${provider} p50 / aws p50 = ${(p50 / reference).toFixed(2)}`);
  }
}

function options(baseUrl: string): ProviderOptions {
  return {
    baseUrl,
    pollIntervalMs: POLL_MS,
    requestTimeoutMs: 2000,
    aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 2000 },
    gcp: { hangTimeoutSeconds: 60 },
    azure: { firstCallTimeoutMs: 120_000 },
    alibaba: { hardened: true, tokenTtlSeconds: 21600 },
  };
}

async function runLane(provider: ProviderName, lane: number, count: number): Promise<number[]> {
  const latencies: number[] = [];
  const simulator = await startSimulator({ provider });
  const controller = new AbortController();
  // The provider is read continuously, as the daemon does, so its poll phase runs free of the trials.
  const arrivals: number[] = [];
  let wake: (() => void) | undefined;
  const reading = (async () => {
    for await (const event of (await createProvider(provider, options(simulator.url))).watch({ signal: controller.signal, log: silentLogger(), onRead: () => undefined })) {
      if (event.type !== 'notice') continue;
      arrivals.push(performance.now());
      wake?.();
    }
  })();
  try {
    // Let the first poll (token, instance document) happen before the first trial.
    await delay(POLL_MS * 1.5);
    for (let trial = 0; trial < count; trial += 1) {
      await delay(50 + Math.random() * POLL_MS);
      latencies.push(await oneTrial(simulator, provider, lane * 1000 + trial, arrivals, (resume) => (wake = resume)));
    }
  } finally {
    controller.abort();
    await reading;
    await simulator.close();
  }
  return latencies;
}

async function oneTrial(
  simulator: RunningSimulator,
  provider: ProviderName,
  serial: number,
  arrivals: number[],
  onArrival: (resume: () => void) => void,
): Promise<number> {
  const before = arrivals.length;
  const arrived = new Promise<void>((resolve) => onArrival(resolve));
  const shownAt = performance.now();
  // A distinct notice time per trial: a distinct notice (Alibaba ids come from the time).
  simulator.trigger({ kind: simulatedCloud(provider).defaultKind, leadMs: 300_000 + serial * 1000 });
  if (arrivals.length === before) await arrived;
  return arrivals[before]! - shownAt;
}
