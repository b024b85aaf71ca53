import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { link, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/lib/log.js';
import { manifestSchema } from '../src/snapshots/manifest.js';
import { chunkHome } from '../src/snapshots/repository.js';
import { snapshotOptionsSchema } from '../src/snapshots/options.js';
import { restore } from '../src/snapshots/restore.js';
import { snapshotStep } from '../src/steps/snapshot/step.js';
import { testStepContext } from '../test/helpers/step-context.js';
import { flag } from './lib/args.js';

/**
 * Issue 14's crash safety for retention: `preemptd snapshots prune --apply` (the built CLI,
 * a child process) is killed with SIGKILL at points spread over its run, on a copy of
 * one file:// repository of 8 dedup snapshots (keep the last 2: 6 manifests and their
 * chunks go). After each kill: every manifest left names only chunks that exist, and the
 * newest restores byte-identical; then a prune run to the end leaves exactly the 2 kept
 * manifests and no pack they do not name.
 *
 * Even trials are killed anywhere in the run, odd ones within the chunk deletions.
 *
 * npm run bench -- prune-crash [--trials 20] [--mib 16]
 */
const MIB = 1024 * 1024;
const SNAPSHOTS = 8;
const KEEP = 2;
/** Odd trials are killed within this long after the manifests are deleted. */
const CHUNK_PHASE_MS = 40;
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A repository of SNAPSHOTS dedup snapshots, each with its own model and a shared frozen file, dated two days back. */
async function makeRepository(work: string, mib: number): Promise<Map<string, string>> {
  const ckpt = join(work, 'ckpt');
  await mkdir(ckpt, { recursive: true });
  await writeFile(join(ckpt, 'frozen.pt'), Buffer.alloc(mib * MIB, 7));
  const newest = new Map<string, string>();
  for (let index = 0; index < SNAPSHOTS; index += 1) {
    await writeFile(join(ckpt, 'model.pt'), randomBytes(mib * MIB));
    const step = testStepContext({ timeoutMs: 600_000 });
    try {
      await snapshotStep.run(snapshotOptionsSchema.parse({ paths: [ckpt], to: `file://${join(work, 'repo')}/`, mode: 'dedup' }), step.context);
    } finally {
      step.dispose();
    }
    if (index === SNAPSHOTS - 1) for (const name of ['frozen.pt', 'model.pt']) newest.set(`ckpt/${name}`, sha256(await readFile(join(ckpt, name))));
  }
  const then = new Date(Date.now() - 2 * 24 * 60 * 60_000);
  for (const entry of await readdir(join(work, 'repo'), { recursive: true, withFileTypes: true })) if (entry.isFile()) await utimes(join(entry.parentPath, entry.name), then, then);
  return newest;
}

/** Manifests, the objects holding chunks (packs, and chunks stored alone before packs), and chunks a manifest names whose object is gone. */
async function state(repo: string): Promise<{ manifests: number; chunks: Set<string>; missing: string[] }> {
  const chunks = new Set<string>();
  for (const folder of ['packs', 'chunks']) {
    for (const entry of await readdir(join(repo, folder), { recursive: true, withFileTypes: true }).catch(() => [])) if (entry.isFile()) chunks.add(relative(repo, join(entry.parentPath, entry.name)));
  }
  const names = await readdir(join(repo, 'snapshots'));
  const missing: string[] = [];
  for (const name of names) {
    const manifest = manifestSchema.parse(JSON.parse(await readFile(join(repo, 'snapshots', name), 'utf8')));
    for (const entry of manifest.files) if (entry.type === 'file') for (const chunk of entry.chunks ?? []) if (!chunks.has(chunkHome(chunk))) missing.push(`${name} names chunk ${chunk[0]} in missing ${chunkHome(chunk)}`);
  }
  return { manifests: names.length, chunks, missing };
}

/**
 * Runs prune --apply. `kill` SIGKILLs it: `afterMs` after the start, or once it has logged
 * that the manifests are deleted (the chunk deletions follow) and `afterMs` more.
 */
async function prune(repo: string, kill?: { afterMs: number; from: 'start' | 'chunks' }): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [cli, 'snapshots', 'prune', `file://${repo}/`, '--keep-last', String(KEEP), '--apply', '--json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let timer: NodeJS.Timeout | undefined;
  if (kill?.from === 'start') timer = setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += String(chunk);
    if (kill?.from === 'chunks' && timer === undefined && stderr.includes('prune: manifests deleted')) timer = setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  return { code, signal, ms: performance.now() - started };
}

/** A copy of a repository whose files are hard links: cheap, and deleting one leaves the original. */
async function linkTree(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { recursive: true, withFileTypes: true })) {
    const source = join(entry.parentPath, entry.name);
    const target = join(to, relative(from, source));
    if (entry.isDirectory()) await mkdir(target, { recursive: true });
    else if (entry.isFile()) {
      await mkdir(dirname(target), { recursive: true });
      await link(source, target);
    }
  }
}

export default async function main(args: string[]): Promise<void> {
  const trials = Number(flag(args, '--trials') ?? 20);
  const mib = Number(flag(args, '--mib') ?? 16);
  const work = await mkdtemp(join(tmpdir(), 'preemptd-prune-crash-'));
  try {
    const newest = await makeRepository(work, mib);
    const original = join(work, 'repo');
    const before = await state(original);
    const calibration = join(work, 'calibration');
    await linkTree(original, calibration);
    const full = await prune(calibration);
    const after = await state(calibration);
    console.log(
      `repository: ${SNAPSHOTS} snapshots, ${before.chunks.size} packs; an uncut prune (exit ${full.code}) takes ${Math.round(full.ms)} ms ` +
        `and leaves ${after.manifests} manifests, ${after.chunks.size} packs; load ${loadavg().map((load) => load.toFixed(1)).join(' ')}`,
    );
    let held = 0;
    let midDeletion = 0;
    for (let index = 0; index < trials; index += 1) {
      const repo = join(work, `trial-${index}`);
      await linkTree(original, repo);
      // Even trials: anywhere in the whole run; odd ones: within the chunk deletions.
      const kill = index % 2 === 0 ? { afterMs: Math.round(((index + Math.random()) / trials) * full.ms * 1.1), from: 'start' as const } : { afterMs: Math.round(Math.random() * CHUNK_PHASE_MS), from: 'chunks' as const };
      const cut = await prune(repo, kill);
      const atKill = await state(repo);
      const problems = [...atKill.missing];
      const out = join(work, `restored-${index}`);
      try {
        await restore({ from: `file://${repo}/`, latest: true, to: out, log: silentLogger(), signal: new AbortController().signal });
        for (const [path, digest] of newest) if (sha256(await readFile(join(out, path))) !== digest) problems.push(`${path} restored with other bytes`);
      } catch (error) {
        problems.push(`restore --latest failed: ${(error as Error).message}`);
      }
      const finished = await prune(repo);
      const end = await state(repo);
      if (finished.code !== 0) problems.push(`the prune after the kill exited ${finished.code}`);
      if (end.manifests !== KEEP || end.chunks.size !== after.chunks.size || end.missing.length) problems.push(`after a full prune: ${end.manifests} manifests, ${end.chunks.size} packs`);
      const deletedManifests = SNAPSHOTS - atKill.manifests;
      const deletedChunks = before.chunks.size - atKill.chunks.size;
      if (deletedChunks > 0 && deletedChunks < before.chunks.size - after.chunks.size) midDeletion += 1;
      if (!problems.length) held += 1;
      console.log(
        `trial ${String(index + 1).padStart(2)} kill ${String(kill.afterMs).padStart(4)} ms after ${kill.from === 'start' ? 'the start        ' : 'manifests deleted'} (${cut.signal ?? `exit ${cut.code}`}): ` +
          `${deletedManifests}/${SNAPSHOTS - KEEP} manifests and ${deletedChunks}/${before.chunks.size - after.chunks.size} packs deleted; ` +
          `${problems.length ? problems.slice(0, 3).join('; ') : 'every manifest whole, latest restores byte-identical, a second prune finishes the job'}`,
      );
      await rm(repo, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }
    console.log(`prune crash series: ${held} of ${trials} trials held; ${midDeletion} kills landed while chunks were being deleted; load ${loadavg().map((load) => load.toFixed(1)).join(' ')}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
