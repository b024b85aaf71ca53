import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (bench/lib is dist/bench/lib once compiled). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export interface Build {
  label: string;
  /** The entry `node <cli> ...` runs. */
  cli: string;
  /** Node options put before the entry whenever this build runs (`--node-flags`). */
  nodeArgs: string[];
  /** Writes this build's production install into `dest` (what a package ships, Node aside). */
  install(dest: string): void;
  remove(): void;
}

/**
 * Today's build to compare against: `rev` of this repository (git archive) compiled by tsc into
 * dist/src, one file per module, run with the full node_modules, as the .deb shipped it before
 * the bundle. It uses this checkout's node_modules (a symlink), so dependency versions match.
 */
export function baselineBuild(rev: string): Build {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-baseline-'));
  execFileSync('sh', ['-c', `git -C "${REPO}" archive "${rev}" | tar -x -C "${dir}"`]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.build.json')], { cwd: dir });
  return {
    label: `today (${rev}, tsc)`,
    cli: join(dir, 'dist/src/cli.js'),
    nodeArgs: [],
    // Its own installer: npm ci --omit=dev from the npm cache.
    install: (dest) => execFileSync('sh', [join(dir, 'packaging/install-production.sh'), dest], { stdio: 'ignore' }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The bundle this tree ships (dist/bundle, `npm run build`), run by `node <nodeArgs>`. */
export function bundleBuild(nodeArgs: string[] = []): Build {
  return {
    label: nodeArgs.length > 0 ? `bundle ${nodeArgs.join(' ')}` : 'bundle (esbuild)',
    cli: join(REPO, 'dist/bundle/preemptd.mjs'),
    nodeArgs,
    install: (dest) => execFileSync('sh', [join(REPO, 'packaging/install-bundle.sh'), dest]),
    remove: () => undefined,
  };
}

/**
 * The bundle of another revision (git archive, bundled by its own scripts/bundle.ts with this
 * checkout's node_modules): a change to the bundle measured against the bundle before it.
 */
export function revisionBundleBuild(rev: string): Build {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-bundle-of-'));
  execFileSync('sh', ['-c', `git -C "${REPO}" archive "${rev}" | tar -x -C "${dir}"`]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(process.execPath, [join(dir, 'scripts/bundle.ts')], { cwd: dir });
  return {
    label: `bundle of ${rev}`,
    cli: join(dir, 'dist/bundle/preemptd.mjs'),
    nodeArgs: [],
    install: (dest) => execFileSync('sh', [join(dir, 'packaging/install-bundle.sh'), dest]),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The revision a bench compares against: `--baseline REV`, else where this branch left main. */
/**
 * The build issue 17 measured as "today's" (main before the bundle, with its
 * install-production.sh): every ratio in docs/benchmarks.md is against it. A later revision
 * would be a bundle-era tree, which has no such installer.
 */
export const ISSUE_17_BASELINE = 'd80d6b4';

export function baselineRev(given: string | undefined): string {
  return given ?? ISSUE_17_BASELINE;
}

/** Bytes on disk (du) of a directory, in MB. */
export function diskMb(dir: string): number {
  return Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]) / 1024;
}
