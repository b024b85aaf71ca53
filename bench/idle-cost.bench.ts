import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startSimulator, type RunningSimulator } from '../src/simulator/metadata-server.js';
import { spawnAgent, stopChildren } from './lib/agent-process.js';
import { flag } from './lib/args.js';
import { processCpuSeconds, processRssMb } from './lib/stats.js';

/**
 * Idle cost at a 1 s poll: the agent (`preemptd run`, AWS provider, a plan of three steps)
 * and the baseline (bench/lib/got-poller: a plain got loop polling instance-action once a
 * second) run side by side, each against its own simulator, for the same wall time.
 * Reports CPU per poll for both, the ratio (goal <= 0.6) and the agent's RSS (goal <= 70 MB).
 *
 * npm run bench -- idle-cost [--seconds 600]
 */
const POLL_PATH = '/latest/meta-data/spot/instance-action';

export default async function main(args: string[]): Promise<void> {
  const seconds = Number(flag(args, '--seconds') ?? 600);
  const workDir = mkdtempSync(join(tmpdir(), 'preemptd-idle-'));
  const agentSimulator = await startSimulator({ provider: 'aws' });
  const baselineSimulator = await startSimulator({ provider: 'aws' });
  const agent = spawnAgent(workDir, {
    metadataUrl: agentSimulator.url,
    settings: [
      'pollInterval: 1s',
      'steps:',
      '  - { name: tell-ops, webhook: { url: "http://127.0.0.1:9/hook" } }',
      '  - { name: drain, http: { url: "http://127.0.0.1:9/drain" } }',
      '  - { name: stop, signal: { pidfile: /run/none.pid, signal: SIGTERM } }',
    ],
    runArgs: ['--log-level', 'warn'],
  });
  const baseline = spawn(process.execPath, [fileURLToPath(new URL('./lib/got-poller.js', import.meta.url)), baselineSimulator.url], { stdio: 'inherit' });
  try {
    // Start-up CPU (module loading) is not idle cost: measure from a warm start.
    await sleep(5000);
    const start = snapshot(agent, agentSimulator, baseline, baselineSimulator);
    console.log(`idle-cost: measuring for ${seconds}s (agent pid ${agent.pid}, baseline pid ${baseline.pid})`);
    for (let elapsed = 0; elapsed < seconds; elapsed += 60) {
      await sleep(Math.min(60, seconds - elapsed) * 1000);
      console.log(`  t=${Math.min(elapsed + 60, seconds)}s agent RSS ${processRssMb(agent.pid!).toFixed(1)} MB, baseline RSS ${processRssMb(baseline.pid!).toFixed(1)} MB`);
    }
    const end = snapshot(agent, agentSimulator, baseline, baselineSimulator);
    const agentPolls = end.agentPolls - start.agentPolls;
    const baselinePolls = end.baselinePolls - start.baselinePolls;
    const agentCpuPerPoll = ((end.agentCpu - start.agentCpu) / agentPolls) * 1000;
    const baselineCpuPerPoll = ((end.baselineCpu - start.baselineCpu) / baselinePolls) * 1000;
    const agentRequests = end.agentRequests - start.agentRequests;
    console.log(`agent:    ${agentPolls} polls (${agentRequests} metadata requests in all), ${agentCpuPerPoll.toFixed(3)} ms CPU per poll, RSS ${end.agentRss.toFixed(1)} MB`);
    console.log(`baseline: ${baselinePolls} polls, ${baselineCpuPerPoll.toFixed(3)} ms CPU per poll, RSS ${end.baselineRss.toFixed(1)} MB`);
    console.log(`ratio agent/baseline CPU per poll: ${(agentCpuPerPoll / baselineCpuPerPoll).toFixed(2)} (goal <= 0.6); agent RSS ${end.agentRss.toFixed(1)} MB (goal <= 70 MB)`);
  } finally {
    await stopChildren(agent, baseline);
    await Promise.all([agentSimulator.close(), baselineSimulator.close()]);
    rmSync(workDir, { recursive: true, force: true });
  }
}

function snapshot(agent: ChildProcess, agentSimulator: RunningSimulator, baseline: ChildProcess, baselineSimulator: RunningSimulator) {
  const total = (simulator: RunningSimulator) => [...simulator.requests.values()].reduce((sum, count) => sum + count, 0);
  return {
    agentCpu: processCpuSeconds(agent.pid!),
    agentRss: processRssMb(agent.pid!),
    agentPolls: agentSimulator.requests.get(POLL_PATH) ?? 0,
    agentRequests: total(agentSimulator),
    baselineCpu: processCpuSeconds(baseline.pid!),
    baselineRss: processRssMb(baseline.pid!),
    baselinePolls: baselineSimulator.requests.get(POLL_PATH) ?? 0,
  };
}
