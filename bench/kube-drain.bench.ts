import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { compileConfig } from '../src/config/schema.js';
import { StepFailure } from '../src/lib/errors.js';
import { STEP_TYPES } from '../src/steps/registry.js';
import { kubernetesStep } from '../src/steps/kubernetes/step.js';
import type { PodReport } from '../src/steps/kubernetes/drain.js';
import { startKubeApiServer, type KubeApiServer } from '../test/helpers/kube-api-server.js';
import { testStepContext } from '../test/helpers/step-context.js';
import { flag } from './lib/args.js';
import { runPlanForNotice } from './lib/run-plan.js';
import { summarise } from './lib/stats.js';

/**
 * Drain inside the deadline (issue 15, "Numbers"). Each run: a fresh fake API server
 * (test/helpers/kube-api-server.ts) with one Node and 100 pods, 20 of them under a
 * PodDisruptionBudget allowing one disruption at a time, each pod taking 0-10 s to stop (the
 * same random draw for both sides); a 60 s deadline. preemptd's kubernetes step (cordon +
 * drain, and again with deleteBlockedWithin 15s) and `kubectl drain --timeout 60s` each drain
 * their own copy of the cluster at the same time. Reported per side: pods still on the Node
 * at the deadline, whether each pod was accounted for (gone, or reported by name) before the
 * deadline, and the time the drain took (kubectl's until it exits). Then notice -> Node cordoned and tainted through the real
 * executor, on loopback: p50/p99. Also per side: how long until every pod had been asked
 * to leave once (`all-asked`), which `--api-latency-ms` (added to every API answer, as a
 * remote API server would) stretches when evictions go one at a time.
 *
 * npm run bench -- kube-drain [--runs 20] [--deadline-s 60] [--cordon-rounds 200] [--api-latency-ms 0]
 */
const TOKEN = 'bench-token';
const PODS = 100;
const GUARDED = 20;

export default async function main(args: string[]): Promise<void> {
  const runs = Number(flag(args, '--runs') ?? 20);
  const deadlineMs = Number(flag(args, '--deadline-s') ?? 60) * 1000;
  const cordonRounds = Number(flag(args, '--cordon-rounds') ?? 200);
  const latencyMs = Number(flag(args, '--api-latency-ms') ?? 0);
  const dir = await mkdtemp(join(tmpdir(), 'kube-drain-bench-'));
  try {
    const rows: Array<{ side: string; left: number; accounted: boolean; ms: number; allAskedMs: number | undefined }> = [];
    for (let run = 1; run <= runs; run++) {
      const stopTimes = Array.from({ length: PODS }, () => Math.round(Math.random() * 10_000));
      const results = await Promise.all([
        drainWithPreemptd(dir, `p${run}`, stopTimes, deadlineMs, undefined, latencyMs),
        drainWithPreemptd(dir, `d${run}`, stopTimes, deadlineMs, '15s', latencyMs),
        drainWithKubectl(dir, `k${run}`, stopTimes, deadlineMs, latencyMs),
      ]);
      for (const row of results) {
        rows.push(row);
        console.log(`run ${run} ${row.side.padEnd(34)} left=${String(row.left).padStart(3)} accounted-before-deadline=${row.accounted} took=${(row.ms / 1000).toFixed(1)}s all-asked=${seconds(row.allAskedMs)}`);
      }
    }
    console.log(`\n${runs} runs, ${PODS} pods (${GUARDED} under a maxUnavailable=1 budget), 0-10 s to stop, deadline ${deadlineMs / 1000}s, API latency ${latencyMs} ms`);
    for (const side of [...new Set(rows.map((row) => row.side))]) {
      const mine = rows.filter((row) => row.side === side);
      const left = summarise(mine.map((row) => row.left));
      const took = summarise(mine.map((row) => row.ms / 1000));
      const asked = mine.map((row) => row.allAskedMs).filter((ms) => ms !== undefined);
      const allAsked = asked.length === 0 ? 'never' : `p50=${seconds(summarise(asked).p50)} max=${seconds(summarise(asked).max)}`;
      console.log(`${side.padEnd(34)} pods left p50=${left.p50} max=${left.max}  every pod gone or reported in time: ${mine.filter((row) => row.accounted).length}/${mine.length}  took p50=${took.p50.toFixed(1)}s max=${took.max.toFixed(1)}s  all asked ${allAsked}`);
    }
    const cordon = await timeCordon(dir, cordonRounds);
    console.log(`\nnotice -> node cordoned and tainted (executor, loopback, ${cordonRounds} rounds): p50=${cordon.p50.toFixed(1)}ms p99=${cordon.p99.toFixed(1)}ms max=${cordon.max.toFixed(1)}ms  goal: p99 <= 100 ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function cluster(dir: string, name: string, stopTimes: number[], latencyMs = 0): Promise<{ server: KubeApiServer; kubeconfig: string }> {
  const server = await startKubeApiServer({ tokens: { [TOKEN]: 'system:serviceaccount:preemptd:preemptd' } });
  server.latencyMs = latencyMs;
  const kubeconfig = await server.writeKubeconfig(join(dir, `${name}.kubeconfig`), { token: TOKEN });
  server.addNode('node-1');
  server.addPdb('default', 'guarded', { selector: { matchLabels: { app: 'guarded' } }, maxUnavailable: 1 });
  stopTimes.forEach((stopsAfterMs, index) => {
    const app = index < GUARDED ? 'guarded' : 'free';
    server.addPod({ name: `pod-${index}`, nodeName: 'node-1', labels: { app }, owner: { kind: 'ReplicaSet', name: `${app}-rs` }, stopsAfterMs });
  });
  return { server, kubeconfig };
}

const seconds = (ms: number | undefined): string => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(2)}s`);

/** Ms from `started` until every pod has been asked to leave (an eviction, or kubectl's delete) at least once; undefined if not by `limitMs`. */
async function allAsked(server: KubeApiServer, started: number, limitMs: number): Promise<number | undefined> {
  while (performance.now() - started < limitMs) {
    const asked = new Set(server.requests.filter((request) => request.method !== 'GET' && /\/pods\/pod-\d+(\/eviction)?$/.test(request.path)).map((request) => request.path.split('/')[6]));
    if (asked.size >= PODS) return performance.now() - started;
    await sleep(10);
  }
  return undefined;
}

const podsLeft = (server: KubeApiServer): number => server.store.list('pods', undefined).filter((pod) => pod.spec?.nodeName === 'node-1').length;

async function drainWithPreemptd(dir: string, name: string, stopTimes: number[], deadlineMs: number, deleteBlockedWithin: string | undefined, latencyMs: number) {
  const { server, kubeconfig } = await cluster(dir, name, stopTimes, latencyMs);
  const started = performance.now();
  const leftAtDeadline = sleep(deadlineMs).then(() => podsLeft(server));
  const asked = allAsked(server, started, deadlineMs);
  const { context, dispose } = testStepContext({ timeoutMs: deadlineMs, planDeadline: Date.now() + deadlineMs });
  let pods: PodReport[] = [];
  try {
    const options = kubernetesStep.schema.parse({ node: 'node-1', kubeconfig, cordon: true, event: false, drain: deleteBlockedWithin ? { deleteBlockedWithin } : true });
    const detail = (await kubernetesStep.run(options, context)) as { pods: PodReport[] };
    pods = detail.pods;
  } catch (error) {
    if (!(error instanceof StepFailure)) throw error;
    pods = (error.detail?.pods as PodReport[] | undefined) ?? [];
  } finally {
    dispose();
  }
  const ms = performance.now() - started;
  const left = await leftAtDeadline;
  await server.close();
  const allAskedMs = await asked;
  return { side: deleteBlockedWithin ? `preemptd drain, deleteBlockedWithin ${deleteBlockedWithin}` : 'preemptd drain', left, accounted: ms < deadlineMs && pods.length === PODS, ms, allAskedMs };
}

async function drainWithKubectl(dir: string, name: string, stopTimes: number[], deadlineMs: number, latencyMs: number) {
  const { server, kubeconfig } = await cluster(dir, name, stopTimes, latencyMs);
  const home = join(dir, `${name}-home`);
  await mkdir(home);
  const started = performance.now();
  const leftAtDeadline = sleep(deadlineMs).then(() => podsLeft(server));
  const asked = allAsked(server, started, deadlineMs);
  const code = await promisify(execFile)('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', join(home, 'cache'), 'drain', 'node-1', '--ignore-daemonsets', `--timeout=${deadlineMs / 1000}s`], {
    env: { ...process.env, HOME: home },
    timeout: deadlineMs + 30_000,
  }).then(
    () => 0,
    (error: { code?: number; stderr?: string }) => {
      console.log(`kubectl drain (${name}) exited ${error.code}: ${String(error.stderr).trim().split('\n').at(-1)}`);
      return error.code ?? 1;
    },
  );
  const ms = performance.now() - started;
  const left = await leftAtDeadline;
  await server.close();
  // kubectl names the pods it could not evict only as a count of errors; "accounted" means it exited by the deadline.
  return { side: `kubectl drain --timeout ${deadlineMs / 1000}s`, left, accounted: code === 0 && ms < deadlineMs, ms, allAskedMs: await asked };
}

async function timeCordon(dir: string, rounds: number) {
  const { server, kubeconfig } = await cluster(dir, 'cordon', []);
  const times: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const node = `node-c${round}`;
      server.addNode(node);
      const config = compileConfig({ provider: 'aws', steps: [{ name: 'mark', kubernetes: { node, kubeconfig, cordon: true, taint: true, event: false } }] }, { stepTypes: STEP_TYPES });
      const started = performance.now();
      const result = await runPlanForNotice(config, `kube-${process.pid}-${round}`);
      times.push(performance.now() - started);
      const spec = server.node(node)?.spec as { unschedulable?: boolean; taints?: unknown[] } | undefined;
      if (result.steps[0]?.status !== 'ok' || spec?.unschedulable !== true || spec.taints?.length !== 1) throw new Error(`round ${round}: node not cordoned and tainted: ${JSON.stringify(result.steps)}`);
    }
  } finally {
    await server.close();
  }
  return summarise(times);
}
