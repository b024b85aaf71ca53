import { mkdirSync } from 'node:fs';
import { readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import { manifestSchema, type Manifest } from '../../src/snapshots/manifest.js';
import { restore } from '../../src/snapshots/restore.js';
import { compileConfig } from './config.js';
import type { TestResources } from './resources.js';
import { ScriptedProvider } from './scripted-provider.js';
import { testBytes } from './seed.js';
import { until } from './until.js';

/**
 * A real daemon on a scripted provider with one sync, `ckpt` (`sync` is its settings), past its
 * first metadata read: the syncs start there, as READY=1 does. The metadata URL is loopback
 * and never reached.
 */
export async function startSyncDaemon(
  resources: TestResources,
  stateDir: string,
  sync: Record<string, unknown>,
): Promise<{ daemon: Daemon; provider: ScriptedProvider }> {
  const config = compileConfig(
    { provider: 'aws', metadataUrl: 'http://127.0.0.1:9/', stateDir, server: { enabled: false }, sync: { ckpt: sync } },
    { file: undefined },
  );
  const provider = new ScriptedProvider();
  const daemon = createDaemon({ config, log: silentLogger(), provider });
  void resources.runDaemon(daemon);
  await until(() => provider.watching);
  provider.read();
  await until(() => daemon.syncs.status().length === 1);
  return { daemon, provider };
}

/** Stops `daemon` and waits until it has (the state a restart finds). */
export async function stopDaemon(daemon: Daemon): Promise<void> {
  await daemon.stop();
  await until(() => daemon.state === 'stopped');
}

/** A test's checkpoint folder, file:// repository and stateDir, under one temporary folder. */
export interface SyncTree {
  dir: string;
  ckpt: string;
  repo: string;
  state: string;
}

/** The checkpoint folder exists; the repository and stateDir are left for the agent to make. */
export function syncTree(resources: TestResources): SyncTree {
  const dir = resources.tempDir();
  const ckpt = join(dir, 'ckpt');
  mkdirSync(ckpt);
  return { dir, ckpt, repo: join(dir, 'repo'), state: join(dir, 'state') };
}

/** The manifest latest.json names in a file:// repository, with its name. */
export async function latestSnapshot(repo: string): Promise<{ name: string; manifest: Manifest }> {
  const pointer = JSON.parse(await readFile(join(repo, 'latest.json'), 'utf8')) as { manifest: string };
  return { name: pointer.manifest, manifest: manifestSchema.parse(JSON.parse(await readFile(join(repo, pointer.manifest), 'utf8'))) };
}

/** The paths of the latest snapshot's files, sorted. */
export async function committedFiles(repo: string): Promise<string[]> {
  return (await latestSnapshot(repo)).manifest.files.map((file) => file.path).sort();
}

/** `restore --latest` of the test's file:// repository into its folder `restored`; resolves to that folder. */
export async function restoredLatest(where: SyncTree): Promise<string> {
  const restored = join(where.dir, 'restored');
  await restore({ from: `file://${where.repo}/`, latest: true, to: restored, log: silentLogger(), signal: new AbortController().signal });
  return restored;
}

/**
 * Every pack object in a file:// repository (writers put chunks in packs, never alone), by id,
 * with its size and mtime: a PUT replaces the file and shows. A put the takeover cut leaves
 * its `.partial` file (removed by a cleanup): not an object.
 */
export async function packObjects(repo: string): Promise<Map<string, { size: number; mtimeMs: number; ino: number }>> {
  const found = new Map<string, { size: number; mtimeMs: number; ino: number }>();
  for (const name of (await readdir(join(repo, 'packs')).catch((): string[] => [])).filter((entry) => !entry.endsWith('.partial'))) {
    const info = await stat(join(repo, 'packs', name));
    found.set(name, { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino });
  }
  return found;
}

/** Bytes of the packs in `after` that `before` did not have. */
export function newPackBytes(before: ReadonlyMap<string, { size: number }>, after: ReadonlyMap<string, { size: number }>): number {
  return [...after].filter(([name]) => !before.has(name)).reduce((sum, [, object]) => sum + object.size, 0);
}


/** Every file under `folder`, relative to it. */
export async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(folder.length + 1));
}

/**
 * Two snapshots committed by a sync of `where` (1 MiB files, settle 200ms), then backdated
 * three hours (every object's mtime, past any prune's grace): the first holds step-1.pt alone,
 * the second step-2.pt alone, which stays in the checkpoint folder. The daemon is stopped.
 * Resolves to the first snapshot's name and step-1.pt's packs.
 */
export async function twoOldSnapshots(resources: TestResources, where: SyncTree): Promise<{ oldest: string; step1Chunks: string[] }> {
  await writeFile(join(where.ckpt, 'step-1.pt'), testBytes(1024 * 1024));
  const { daemon } = await startSyncDaemon(resources, where.state, { paths: [where.ckpt], to: `file://${where.repo}/`, settle: '200ms' });
  await until(async () => (await committedFiles(where.repo).catch((): string[] => [])).includes('ckpt/step-1.pt'), 20_000);
  const oldest = daemon.syncs.status()[0]!.lastCommit!;
  const step1Chunks = (await filesUnder(where.repo)).filter((name) => name.startsWith('packs/'));
  await rm(join(where.ckpt, 'step-1.pt'));
  await writeFile(join(where.ckpt, 'step-2.pt'), testBytes(1024 * 1024));
  await until(async () => (await committedFiles(where.repo)).join() === 'ckpt/step-2.pt', 20_000);
  await stopDaemon(daemon);
  const past = (Date.now() - 3 * 60 * 60_000) / 1000;
  for (const name of await filesUnder(where.repo)) await utimes(join(where.repo, name), past, past);
  return { oldest, step1Chunks };
}
