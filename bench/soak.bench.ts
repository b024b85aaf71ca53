import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseFaultSpec, formatFaultSpec } from '../src/simulator/fault-spec.js';
import { startSimulator } from '../src/simulator/metadata-server.js';
import { startReceiver } from '../test/helpers/receiver.js';
import { spawnAgent, stopChildren } from './lib/agent-process.js';
import { flag } from './lib/args.js';
import { processRssMb } from './lib/stats.js';

/**
 * Soak: the real agent (`preemptd run`, AWS provider) against the simulator at a 20 ms poll
 * (50 polls/s) with faults mixed in, for --minutes (default 10). A scheduled maintenance
 * event (a fresh EventId each time) is shown about once a minute and cleared once its plan
 * has run. Reports RSS every minute, its
 * slope per 10,000 polls after warm-up (and that of the heap after a full GC, which tells a
 * leak from GC timing), open fds at start and end, event-loop delay p99 (measured inside the
 * agent by bench/lib/loop-delay-probe, preloaded with --import; an idle node process with the
 * same probe runs alongside as the machine's noise floor), plans run and log lines written.
 *
 * npm run bench -- soak [--minutes 10] [--faults SPEC]
 * Goals: RSS slope <= 1 MB / 10k polls, fds flat, event-loop delay p99 <= 20 ms.
 */
const POLL_PATH = '/latest/meta-data/spot/instance-action';
/** About 1.5 % of requests fail, in every way the fault mode knows; each failure costs a backoff. */
const DEFAULT_FAULTS =
  '500:0.002,503:0.002,429:0.001,429-retry-after:0.001,401:0.002,reset:0.002,hang:0.0005,drip=50ms:0.001,truncated:0.001,wrong-types:0.001,html:0.001,flicker:0.002,hang-token:0.05';
const SAMPLE_MS = 10_000;

interface Sample {
  at: number;
  polls: number;
  rssMb: number;
}

export default async function main(args: string[]): Promise<void> {
  const minutes = Number(flag(args, '--minutes') ?? 10);
  const faults = parseFaultSpec(flag(args, '--faults') ?? DEFAULT_FAULTS);
  const workDir = mkdtempSync(join(tmpdir(), 'preemptd-soak-'));
  const loopFile = join(workDir, 'loop-delay.jsonl');
  const baselineLoopFile = join(workDir, 'baseline-loop-delay.jsonl');
  const probe = fileURLToPath(new URL('./lib/loop-delay-probe.js', import.meta.url));
  const receiver = await startReceiver();
  const simulator = await startSimulator({ provider: 'aws', faults });
  const agent = spawnAgent(workDir, {
    metadataUrl: simulator.url,
    settings: [
      'pollInterval: 20ms',
      'requestTimeout: 500ms',
      'aws: { tokenTimeout: 500ms, tokenTtl: 60 }',
      'server: { enabled: false }',
      'steps:',
      `  - { name: tell-ops, webhook: { url: "${receiver.url('/hook')}", retries: 2 } }`,
      '  - { name: checkpoint, exec: { command: ["true"] } }',
    ],
    nodeArgs: ['--expose-gc', '--import', probe],
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_LOOP_PROBE_FILE: loopFile },
  });
  const baseline = spawn(process.execPath, ['--import', probe, '-e', 'setInterval(() => {}, 20)'], {
    stdio: 'ignore',
    env: { ...process.env, BENCH_LOOP_PROBE_FILE: baselineLoopFile },
  });
  const logs = countLogLines(agent.stdout!);
  const pid = agent.pid!;
  const polls = () => simulator.requests.get(POLL_PATH) ?? 0;
  const samples: Sample[] = [];
  let noticeSerial = 0;
  try {
    console.log(`soak: ${minutes} min, agent pid ${pid}, poll 20 ms, faults ${formatFaultSpec(faults)}`);
    await sleep(5000);
    const fdsStart = openFds(pid);
    const started = Date.now();
    const endAt = started + minutes * 60_000;
    let nextMinute = started + 60_000;
    let nextNotice = started + 30_000;
    samples.push({ at: started, polls: polls(), rssMb: processRssMb(pid) });
    console.log(`  t=0s polls=${polls()} RSS ${processRssMb(pid).toFixed(1)} MB fds ${fdsStart}`);
    while (Date.now() < endAt) {
      await sleep(Math.min(SAMPLE_MS, endAt - Date.now()));
      if (agent.exitCode !== null || agent.signalCode !== null) throw new Error(`the agent exited (${agent.exitCode ?? agent.signalCode})`);
      samples.push({ at: Date.now(), polls: polls(), rssMb: processRssMb(pid) });
      if (Date.now() >= nextNotice) {
        // A scheduled maintenance event: each has its own EventId, so its own id and one plan.
        // (A spot notice shown again in the same boot is the same notice, whatever its time.)
        // Scheduled events are read once a minute, hence the longer wait.
        noticeSerial += 1;
        simulator.trigger({ kind: 'maintenance', leadMs: 10 * 60_000 });
        await receiver.waitFor(noticeSerial, 75_000).catch(() => console.log(`  notice ${noticeSerial}: no delivery within 75 s`));
        simulator.clear();
        nextNotice += 60_000;
      }
      if (Date.now() >= nextMinute) {
        const last = samples.at(-1)!;
        console.log(
          `  t=${Math.round((last.at - started) / 1000)}s polls=${last.polls} RSS ${last.rssMb.toFixed(1)} MB fds ${openFds(pid)} log lines ${logs.total} plans ${receiver.requests.length}`,
        );
        nextMinute += 60_000;
      }
    }
    const fdsEnd = openFds(pid);
    await sleep(1000);
    report(samples, fdsStart, fdsEnd, { agent: readProbe(loopFile), baseline: readProbe(baselineLoopFile) }, logs, receiver.requests.length, noticeSerial, simulator.faults.applied, minutes);
  } finally {
    await stopChildren(agent, baseline);
    await Promise.all([simulator.close(), receiver.close()]);
    rmSync(workDir, { recursive: true, force: true });
  }
}

interface ProbeLine {
  at: number;
  p99: number;
  max: number;
  wholeP99: number;
  wholeMax: number;
  heapAfterGcMb: number | null;
}

function readProbe(file: string): ProbeLine[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ProbeLine);
  } catch {
    return [];
  }
}

function report(
  samples: Sample[],
  fdsStart: number,
  fdsEnd: number,
  probes: { agent: ProbeLine[]; baseline: ProbeLine[] },
  logs: LogCounts,
  plans: number,
  notices: number,
  applied: ReadonlyMap<string, number>,
  minutes: number,
): void {
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const polls = last.polls - first.polls;
  // Warm-up: the first fifth of the run (2 min of 10): JIT, pools and caches settle there.
  const warm = samples.filter((sample) => sample.at - first.at >= (minutes * 60_000) / 5);
  const slope = slopePer10kPolls(warm);
  const pollsAt = (at: number) => samples.reduce((best, sample) => (Math.abs(sample.at - at) < Math.abs(best.at - at) ? sample : best)).polls;
  const heap = probes.agent
    .filter((line) => line.heapAfterGcMb !== null && line.at - first.at >= (minutes * 60_000) / 5)
    .map((line) => ({ at: line.at, polls: pollsAt(line.at), rssMb: line.heapAfterGcMb! }));
  const worstMinute = Math.max(...probes.agent.map((line) => line.p99));
  const whole = probes.agent.at(-1);
  const baseline = probes.baseline.at(-1);
  const faultsApplied = [...applied].map(([name, count]) => `${name}=${count}`).join(' ');
  console.log('soak figures');
  console.log(`  polls: ${polls} in ${((last.at - first.at) / 1000).toFixed(0)} s (${(polls / ((last.at - first.at) / 1000)).toFixed(1)}/s)`);
  console.log(`  faults applied: ${faultsApplied || 'none'}`);
  console.log(`  notices shown: ${notices}, webhook deliveries (one per plan): ${plans}`);
  console.log(`  RSS: start ${first.rssMb.toFixed(1)} MB, end ${last.rssMb.toFixed(1)} MB, slope after warm-up ${slope.toFixed(3)} MB per 10,000 polls (goal <= 1)`);
  console.log(
    `  heap after a full GC (once a minute): ${heap.map((point) => point.rssMb.toFixed(1)).join(', ')} MB; slope after warm-up ${slopePer10kPolls(heap).toFixed(3)} MB per 10,000 polls`,
  );
  console.log(`  open fds: start ${fdsStart}, end ${fdsEnd} (goal: flat)`);
  console.log(
    `  event-loop delay (10 ms sampling, raw histogram; idle reads ~10 ms): agent whole-run p99 ${whole?.wholeP99 ?? NaN} ms, max ${whole?.wholeMax ?? NaN} ms, ` +
      `worst minute p99 ${worstMinute} ms (goal p99 <= 20 ms); idle node baseline alongside: p99 ${baseline?.wholeP99 ?? NaN} ms, max ${baseline?.wholeMax ?? NaN} ms`,
  );
  console.log(`  log lines: ${logs.total} (warn ${logs.warn}, error ${logs.error}); most frequent: ${logs.top(3)}`);
}

/** Least-squares slope of RSS against polls, in MB per 10,000 polls. */
function slopePer10kPolls(samples: Sample[]): number {
  const n = samples.length;
  if (n < 2) return NaN;
  const meanX = samples.reduce((sum, s) => sum + s.polls, 0) / n;
  const meanY = samples.reduce((sum, s) => sum + s.rssMb, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.polls - meanX) * (s.rssMb - meanY);
    den += (s.polls - meanX) ** 2;
  }
  return (num / den) * 10_000;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

interface LogCounts {
  total: number;
  warn: number;
  error: number;
  top(n: number): string;
}

function countLogLines(stream: NodeJS.ReadableStream): LogCounts {
  const byMessage = new Map<string, number>();
  const counts: LogCounts = {
    total: 0,
    warn: 0,
    error: 0,
    top: (n) =>
      [...byMessage]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([msg, count]) => `${count}x "${msg.slice(0, 70)}"`)
        .join(', '),
  };
  createInterface({ input: stream }).on('line', (line) => {
    counts.total += 1;
    try {
      const parsed = JSON.parse(line) as { level?: string; msg?: string };
      if (parsed.level === 'warn') counts.warn += 1;
      if (parsed.level === 'error') counts.error += 1;
      const key = (parsed.msg ?? '').replace(/\d+/g, 'N');
      byMessage.set(key, (byMessage.get(key) ?? 0) + 1);
    } catch {
      byMessage.set(line.slice(0, 70), (byMessage.get(line.slice(0, 70)) ?? 0) + 1);
    }
  });
  return counts;
}
