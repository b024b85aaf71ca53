import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '../src/simulator/metadata-server.js';
import { formatMs, processCpuSeconds, processRssMb, summarise } from './lib/stats.js';

/**
 * What the local server costs. Two agents (`preemptd run`, AWS provider, the same plan) run
 * side by side against one simulator, one with the server and one without; a notice gives
 * every metric family samples.
 * 1. RSS: for `--seconds` each, the server is used at Kubernetes' default rates (probes
 *    every 10 s, a scrape every 15 s), then busier (each endpoint every second); the RSS
 *    difference between the two agents after each (goal <= 5 MB).
 * 2. Scrape cost: `--scrapes` back-to-back scrapes of /metrics: wall time per scrape as a
 *    client sees it (goal: median <= 2 ms), agent CPU per scrape, /healthz for comparison,
 *    and the RSS difference again (hammering grows V8's young generation; see the output).
 *
 * npm run bench -- metrics-scrape [--seconds 90] [--scrapes 1000]
 */
const PORT_BASE = 19_464;

export default async function main(args: string[]): Promise<void> {
  const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
  const scrapes = option('--scrapes', 1000);
  const seconds = option('--seconds', 90);
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
  const workDir = mkdtempSync(join(tmpdir(), 'preemptd-scrape-'));
  const simulator = await startSimulator({ provider: 'aws' });
  const port = PORT_BASE + (process.pid % 500);
  const agents: ChildProcess[] = [];
  const startAgent = (name: string, server: boolean) => {
    const file = join(workDir, `${name}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        provider: 'aws',
        metadataUrl: simulator.url,
        pollInterval: '1s',
        stateDir: join(workDir, name),
        server: { enabled: server, listen: `127.0.0.1:${port}` },
        steps: [
          { name: 'tell-ops', webhook: { url: 'http://127.0.0.1:9/hook', retries: 0 } },
          { name: 'drain', http: { url: 'http://127.0.0.1:9/drain' } },
          { name: 'stop', after: ['drain'], signal: { pidfile: '/run/none.pid', signal: 'SIGTERM' } },
        ],
      }),
    );
    const child = spawn(process.execPath, [cli, 'run', '--config', file, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
    agents.push(child);
    return child;
  };
  try {
    const withServer = startAgent('with-server', true);
    const without = startAgent('without-server', false);
    await sleep(3000);
    simulator.trigger({ kind: 'terminate', leadMs: 120_000 });
    await sleep(4000);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const started = performance.now();
        http
          .get({ host: '127.0.0.1', port, path, agent }, (response) => {
            let bytes = 0;
            response.on('data', (chunk: Buffer) => (bytes += chunk.length));
            response.on('end', () => (response.statusCode === 200 || path !== '/metrics' ? resolve(performance.now() - started) : reject(new Error(`HTTP ${response.statusCode}`))));
          })
          .on('error', reject);
      });
    const rssDifference = async () => {
      const diffs: number[] = [];
      for (let sample = 0; sample < 5; sample += 1) {
        diffs.push(processRssMb(withServer.pid!) - processRssMb(without.pid!));
        await sleep(200);
      }
      return `with server ${processRssMb(withServer.pid!).toFixed(1)} MB, without ${processRssMb(without.pid!).toFixed(1)} MB, difference ${summarise(diffs).p50.toFixed(1)} MB`;
    };

    // Two processes' RSS drift apart by a few MB on their own: sample the difference every
    // 5 s over the second half of a phase and take the median.
    const usePhase = async (label: string, every: Record<string, number>) => {
      const diffs: number[] = [];
      for (let second = 0; second < seconds; second += 1) {
        const due = Object.entries(every).filter(([, period]) => second % period === 0);
        await Promise.all([...due.map(([path]) => get(path)), sleep(1000)]);
        if (second >= seconds / 2 && second % 5 === 0) diffs.push(processRssMb(withServer.pid!) - processRssMb(without.pid!));
      }
      console.log(
        `RSS, ${label} for ${seconds}s: with server ${processRssMb(withServer.pid!).toFixed(1)} MB, without ${processRssMb(without.pid!).toFixed(1)} MB, ` +
          `difference median ${summarise(diffs).p50.toFixed(1)} MB over the second half (goal <= 5 MB)`,
      );
    };
    await usePhase('Kubernetes defaults (probes every 10 s, a scrape every 15 s)', { '/healthz': 10, '/readyz': 10, '/metrics': 15 });
    await usePhase('busy (/metrics, /healthz and /readyz every second)', { '/healthz': 1, '/readyz': 1, '/metrics': 1 });

    const size = Buffer.byteLength(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    for (let warm = 0; warm < 100; warm += 1) await get('/metrics');
    const cpuBefore = processCpuSeconds(withServer.pid!);
    const metricsMs: number[] = [];
    for (let index = 0; index < scrapes; index += 1) metricsMs.push(await get('/metrics'));
    const cpuPerScrapeMs = ((processCpuSeconds(withServer.pid!) - cpuBefore) / scrapes) * 1000;
    const healthMs: number[] = [];
    for (let index = 0; index < scrapes; index += 1) healthMs.push(await get('/healthz'));
    agent.destroy();
    const metrics = summarise(metricsMs);
    const health = summarise(healthMs);
    console.log(`/metrics: ${scrapes} back-to-back scrapes of ${size} bytes, median ${formatMs(metrics.p50)}, p90 ${formatMs(metrics.p90)}, p99 ${formatMs(metrics.p99)} (goal: median <= 2 ms)`);
    console.log(`/metrics: agent CPU per scrape ${cpuPerScrapeMs.toFixed(3)} ms`);
    console.log(`/healthz: median ${formatMs(health.p50)}, p99 ${formatMs(health.p99)}; ratio /metrics / /healthz median ${(metrics.p50 / health.p50).toFixed(2)}`);
    await sleep(2000);
    console.log(`RSS after ${2 * scrapes + 100} back-to-back requests: ${await rssDifference()} (V8 grew its young generation under the burst)`);
  } finally {
    for (const child of agents) child.kill('SIGTERM');
    await Promise.all(agents.map((child) => new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)))));
    await simulator.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
