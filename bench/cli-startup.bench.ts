import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '../src/simulator/metadata-server.js';
import { formatMs, summarise } from './lib/stats.js';

/**
 * Cold-start wall time of the CLI, each run a new process (median of `--runs`):
 * `preemptd --help`, and `preemptd check` against a simulated AWS metadata service with a
 * plan of three steps. `node -e 0` alongside is the floor any Node CLI pays.
 *
 * npm run bench -- cli-startup [--runs 10]
 */
export default async function main(args: string[]): Promise<void> {
  const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 10;
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
  const workDir = mkdtempSync(join(tmpdir(), 'preemptd-startup-'));
  const simulator = await startSimulator({ provider: 'aws' });
  const config = join(workDir, 'config.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      provider: 'aws',
      metadataUrl: simulator.url,
      stateDir: join(workDir, 'state'),
      steps: [
        { name: 'tell-ops', webhook: { url: 'http://127.0.0.1:9/hook' } },
        { name: 'drain', http: { url: 'http://127.0.0.1:9/drain' } },
        { name: 'stop', signal: { pidfile: join(workDir, 'none.pid'), signal: 'SIGTERM' } },
      ],
    }),
  );
  const cases: Array<[string, string[]]> = [
    ['node -e 0 (floor)', ['-e', '0']],
    ['preemptd --help', [cli, '--help']],
    ['preemptd check', [cli, 'check', '--config', config]],
  ];
  try {
    const results = new Map<string, number[]>(cases.map(([name]) => [name, []]));
    // Interleaved, so drift on a shared machine hits every case alike.
    for (let run = 0; run < runs; run += 1) {
      for (const [name, argv] of cases) results.get(name)!.push(await timeProcess(argv));
    }
    const floor = summarise(results.get(cases[0]![0])!).p50;
    for (const [name, times] of results) {
      const stats = summarise(times);
      console.log(`${name.padEnd(20)} median ${formatMs(stats.p50)}, max ${formatMs(stats.max)} (${runs} runs; ${(stats.p50 / floor).toFixed(1)}x the floor)`);
    }
  } finally {
    await simulator.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Wall time from spawn to exit of one Node process. */
export function timeProcess(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, argv, { stdio: 'ignore', env });
    child.on('error', reject);
    child.on('exit', () => resolve(performance.now() - started));
  });
}
