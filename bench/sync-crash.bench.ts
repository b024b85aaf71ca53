import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '../src/simulator/metadata-server.js';
import { MARKER_NAME } from '../src/snapshots/restore-marker.js';
import { spawnAgent, stopChildren } from './lib/agent-process.js';
import { flag } from './lib/args.js';
import { listFiles, RepositoryCheck, sha256 } from './lib/repository-check.js';

/**
 * Issue 14's crash safety for the background sync and its commits: a real `preemptd run`
 * (loopback metadata simulator, no notice, a `sync:` section storing to a file://
 * repository at a bandwidth cap) while this process plays the trainer: each checkpoint is a
 * new `step-N.pt` of random bytes beside a frozen file, the one before the last is deleted,
 * then the COMPLETE marker is touched. The agent is killed with SIGKILL
 * - `upload`: once a random number of its packs are stored (1 to all but one);
 * - `manifest`: as the manifest's temporary file appears in snapshots/;
 * - `pointer`: as the manifest appears under its name, before latest.json moves on;
 * then started again. After each kill: every manifest names only chunks that are there and
 * hash to their names, latest.json restores byte-identical to what was written under each
 * name, the record in stateDir claims no file whose chunks are missing; after the restart
 * the sync commits the checkpoint (and all of that still holds).
 * Then `preemptd restore --latest` (the built CLI) is killed at points spread over its run:
 * no file under its final name differs from what was written, and a rerun completes.
 *
 * npm run bench -- sync-crash [--trials 20] [--mib 32] [--cap 100MB/s]
 */
const MIB = 1024 * 1024;
const PHASES = ['upload', 'manifest', 'pointer'] as const;
type Phase = (typeof PHASES)[number];
const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const load = () => loadavg().map((value) => value.toFixed(1)).join(' ');

interface Series {
  work: string;
  ckpt: string;
  repo: string;
  record: string;
  known: Map<string, string>;
  check: RepositoryCheck;
  step: number;
}

/** The trainer: a new checkpoint file, the one before the last deleted, then the marker touched. */
async function writeCheckpoint(series: Series, mib: number): Promise<string> {
  series.step += 1;
  const name = `ckpt/step-${series.step}.pt`;
  const content = randomBytes(mib * MIB);
  series.known.set(name, sha256(content));
  await writeFile(join(series.work, name), content);
  await rm(join(series.work, `ckpt/step-${series.step - 2}.pt`), { force: true });
  const now = new Date();
  await utimes(join(series.ckpt, 'COMPLETE'), now, now);
  return name;
}

/** Whether the manifest latest.json names holds `path`. */
async function latestHolds(series: Series, path: string): Promise<boolean> {
  const name = await series.check.latestName();
  if (name === undefined) return false;
  const text = await readFile(join(series.repo, 'snapshots', name), 'utf8').catch(() => undefined);
  return text !== undefined && text.includes(`"${path}"`);
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, pollMs = 20): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > end) return false;
    await sleep(pollMs);
  }
  return true;
}

const PARTIAL = /(^|\/)\.[0-9a-f]{8}\.partial$/;
/** Packs stored under their names (a put's temporary file is not one): the sync stores chunks in packs. */
const packFiles = async (series: Series) => (await listFiles(join(series.repo, 'packs'))).filter((path) => !PARTIAL.test(path)).length;
const manifestPartials = async (series: Series) => (await listFiles(join(series.repo, 'snapshots'))).filter((path) => PARTIAL.test(path)).length;

function startAgent(series: Series, metadataUrl: string, cap: string): ChildProcess {
  return spawnAgent(series.work, {
    metadataUrl,
    settings: [
      'pollInterval: 200ms',
      'server: { enabled: false }',
      'sync:',
      '  ckpt:',
      `    paths: [${series.ckpt}]`,
      `    to: file://${series.repo}/`,
      `    marker: ${join(series.ckpt, 'COMPLETE')}`,
      `    bandwidth: ${cap}`,
    ],
    stdio: 'ignore',
  });
}

/** What the repository showed at the kill, against what it held before the checkpoint. */
async function stateAtKill(series: Series, path: string, before: Before, packsPerCheckpoint: number): Promise<string> {
  if (await latestHolds(series, path)) return 'latest.json had moved on';
  const problems: string[] = [];
  const manifests = await series.check.manifests(problems);
  if ([...manifests.values()].some((manifest) => manifest.files.some((file) => file.path === path))) return 'manifest whole, latest.json not moved';
  if ((await manifestPartials(series)) > before.manifestPartials) return 'manifest being written';
  const packs = (await packFiles(series)) - before.packs;
  return packs >= packsPerCheckpoint ? 'packs stored, no manifest yet' : packs > 0 ? 'mid-upload' : 'before the first pack';
}

interface Before {
  packs: number;
  manifestPartials: number;
}

/**
 * Kills `agent` at the point `phase` names of storing the checkpoint the marker announces:
 * `upload` once a random number of its packs (1 to all but one) are stored.
 */
async function killDuring(series: Series, agent: ChildProcess, phase: Phase, packsPerCheckpoint: number, mib: number): Promise<{ path: string; before: Before }> {
  const before = { packs: await packFiles(series), manifestPartials: await manifestPartials(series) };
  let watcher: FSWatcher | undefined;
  const killed = once(agent, 'exit');
  if (phase !== 'upload') {
    // Killed from the watch callback itself: the agent gets no event loop turn in between.
    const wanted = phase === 'manifest' ? /\.partial$/ : /\.json$/;
    watcher = watch(join(series.repo, 'snapshots'), (_, name) => {
      if (name !== null && wanted.test(name)) agent.kill('SIGKILL');
    });
  }
  const path = await writeCheckpoint(series, mib);
  if (phase === 'upload') {
    const target = before.packs + 1 + Math.floor(Math.random() * Math.max(1, packsPerCheckpoint - 1));
    await waitFor(async () => (await packFiles(series)) >= target, 60_000, 2);
    agent.kill('SIGKILL');
  }
  await Promise.race([killed, sleep(60_000).then(() => agent.kill('SIGKILL'))]);
  watcher?.close();
  return { path, before };
}

async function syncSeries(trials: number, mib: number, cap: string, metadataUrl: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'preemptd-sync-crash-'));
  const series: Series = { work, ckpt: join(work, 'ckpt'), repo: join(work, 'repo'), record: join(work, 'state', 'sync', 'ckpt.json'), known: new Map(), check: new RepositoryCheck(join(work, 'repo')), step: 0 };
  let agent: ChildProcess | undefined;
  try {
    await mkdir(series.ckpt, { recursive: true });
    await mkdir(join(series.repo, 'snapshots'), { recursive: true });
    const frozen = randomBytes(2 * mib * MIB);
    series.known.set('ckpt/frozen.pt', sha256(frozen));
    series.known.set('ckpt/COMPLETE', sha256(Buffer.alloc(0)));
    await writeFile(join(series.ckpt, 'frozen.pt'), frozen);
    await writeFile(join(series.ckpt, 'COMPLETE'), '');
    agent = startAgent(series, metadataUrl, cap);
    // Calibration, uncut: the first checkpoint (with the frozen file), then one timed.
    if (!(await waitFor(() => latestHolds(series, 'ckpt/frozen.pt'), 60_000))) throw new Error('the sync never committed the first checkpoint');
    const packsBefore = await packFiles(series);
    const started = performance.now();
    const path = await writeCheckpoint(series, mib);
    await waitFor(async () => (await packFiles(series)) > packsBefore, 30_000, 5);
    const firstPack = performance.now();
    await waitFor(() => latestHolds(series, path), 60_000, 5);
    const uploadMs = performance.now() - firstPack;
    const packsPerCheckpoint = (await packFiles(series)) - packsBefore;
    console.log(
      `sync: a ${mib} MiB checkpoint (${packsPerCheckpoint} packs) at ${cap}: first pack ${Math.round(firstPack - started)} ms after the marker, committed ${Math.round(uploadMs)} ms later; load ${load()}`,
    );

    for (const phase of PHASES) {
      let held = 0;
      const states = new Map<string, number>();
      for (let index = 0; index < trials; index += 1) {
        const cut = await killDuring(series, agent, phase, packsPerCheckpoint, mib);
        const at = await stateAtKill(series, cut.path, cut.before, packsPerCheckpoint);
        states.set(at, (states.get(at) ?? 0) + 1);
        const restored = join(work, 'restored');
        const problems = await series.check.problems(series.known, restored, series.record);
        await rm(restored, { recursive: true, force: true });
        agent = startAgent(series, metadataUrl, cap);
        const resumed = await waitFor(() => latestHolds(series, cut.path), 60_000);
        if (!resumed) problems.push('after the restart the sync did not commit the checkpoint within 60 s');
        problems.push(...(await series.check.problems(series.known, restored, series.record)).map((problem) => `after the restart: ${problem}`));
        await rm(restored, { recursive: true, force: true });
        if (!problems.length) held += 1;
        console.log(`${phase.padEnd(8)} trial ${String(index + 1).padStart(2)}: killed with ${at}; ${problems.length ? problems.slice(0, 3).join('; ') : 'every manifest whole, latest restores byte-identical, the record claims only stored chunks, the restart committed'}`);
      }
      const where = [...states].map(([state, count]) => `${count}× ${state}`).join(', ');
      console.log(`sync crash series, kill during ${phase}: ${held} of ${trials} trials held (${where}); load ${load()}`);
    }
    console.log(`temporary files the kills left in the repository: ${await series.check.partials()}`);
    await stopChildren(agent);
    await restoreSeries(series, trials);
  } finally {
    if (agent) await stopChildren(agent);
    await rm(work, { recursive: true, force: true });
  }
}

/** Runs `preemptd restore --latest`; `killAfterMs` SIGKILLs it that long after the start. */
async function restoreCli(series: Series, to: string, killAfterMs?: number): Promise<{ code: number | null; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [cli, 'restore', '--latest', `file://${series.repo}/`, '--to', to, '--json'], { stdio: 'ignore' });
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, ms: performance.now() - started };
}

/** Files under `to` by kind (the --if-newer marker aside): under a manifest name with the bytes written, with other bytes, temporary, anything else. */
async function restoredState(series: Series, to: string): Promise<{ whole: number; wrong: string[]; partial: number; other: string[] }> {
  const state = { whole: 0, wrong: [] as string[], partial: 0, other: [] as string[] };
  for (const path of await listFiles(to)) {
    const known = series.known.get(path);
    if (path === MARKER_NAME) continue;
    if (PARTIAL.test(path)) state.partial += 1;
    else if (known === undefined) state.other.push(path);
    else if (sha256(await readFile(join(to, path))) === known) state.whole += 1;
    else state.wrong.push(path);
  }
  return state;
}

async function restoreSeries(series: Series, trials: number): Promise<void> {
  const calibration = await restoreCli(series, join(series.work, 'restore-calibration'));
  const files = (await restoredState(series, join(series.work, 'restore-calibration'))).whole;
  console.log(`restore --latest: ${files} files, an uncut run (exit ${calibration.code}) takes ${Math.round(calibration.ms)} ms; load ${load()}`);
  let held = 0;
  let leftAfterRerun = 0;
  for (let index = 0; index < trials; index += 1) {
    const to = join(series.work, `restore-${index}`);
    const killAfterMs = Math.round(((index + Math.random()) / trials) * calibration.ms * 1.1);
    const cut = await restoreCli(series, to, killAfterMs);
    const atKill = await restoredState(series, to);
    const rerun = await restoreCli(series, to);
    const after = await restoredState(series, to);
    const problems = [
      ...atKill.wrong.map((path) => `${path} under its final name with other bytes`),
      ...atKill.other.map((path) => `unexpected file ${path}`),
      ...(rerun.code === 0 ? [] : [`the rerun exited ${rerun.code}`]),
      ...(after.whole === files && after.wrong.length === 0 ? [] : [`after the rerun ${after.whole} of ${files} files whole`]),
    ];
    leftAfterRerun += after.partial;
    if (!problems.length) held += 1;
    console.log(
      `restore  trial ${String(index + 1).padStart(2)}: kill at ${String(killAfterMs).padStart(4)} ms (${cut.code === null ? 'killed' : `exit ${cut.code}`}): ` +
        `${atKill.whole} files in place, ${atKill.partial} temporary; after a rerun ${after.whole} files, ${after.partial} temporary left; ${problems.length ? problems.slice(0, 3).join('; ') : 'held'}`,
    );
    await rm(to, { recursive: true, force: true });
  }
  console.log(`restore crash series: ${held} of ${trials} trials held; temporary files left after the reruns: ${leftAfterRerun}; load ${load()}`);
}

export default async function main(args: string[]): Promise<void> {
  const trials = Number(flag(args, '--trials') ?? 20);
  const mib = Number(flag(args, '--mib') ?? 32);
  const cap = flag(args, '--cap') ?? '100MB/s';
  const simulator = await startSimulator({ provider: 'aws' });
  try {
    await syncSeries(trials, mib, cap, simulator.url);
  } finally {
    await simulator.close();
  }
}
