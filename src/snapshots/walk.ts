import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import picomatch from 'picomatch';

/** A regular file found under a snapshot path, as it was when found. */
export interface FoundFile {
  type: 'file';
  /** Where it is on disk. */
  source: string;
  /** Its name in the snapshot: the root's base name, then the path below it, `/`-separated. */
  name: string;
  size: number;
  mtimeMs: number;
  mode: number;
  /** Device and inode: the reader opens this very file or none (a swapped path is refused). */
  dev: number;
  ino: number;
}

/** A symbolic link, stored as a link; never followed. */
export interface FoundLink {
  type: 'symlink';
  source: string;
  name: string;
  target: string;
}

export type FoundEntry = FoundFile | FoundLink;

export interface Skipped {
  path: string;
  reason: string;
}

export interface WalkResult {
  entries: FoundEntry[];
  skipped: Skipped[];
  /** Files and directories left out by `exclude`. */
  excluded: number;
}

/**
 * Lists what `paths` name: files, directories (recursively) and globs, minus `exclude`.
 * Exclude patterns without a `/` match a base name anywhere (`*.tmp`); others match the
 * absolute path or the name in the snapshot (`/data/ckpt/tmp/**`, `ckpt/tmp/**`).
 * A listed path that is itself a symlink is followed (the user named it); links inside are
 * recorded as links and never descended into, so nothing outside the roots is read.
 * Listing stops when `stop` aborts (the cut-off): a root not listed whole is reported skipped.
 */
export async function walkPaths(paths: readonly string[], exclude: readonly string[], stop: AbortSignal): Promise<WalkResult> {
  const isExcluded = excludeMatcher(exclude);
  const result: WalkResult = { entries: [], skipped: [], excluded: 0 };
  const seenSources = new Set<string>();
  const nameOwners = new Map<string, string>();
  /** Set once the cut-off left something unlisted. */
  let cut = false;

  const add = (entry: FoundEntry) => {
    if (seenSources.has(entry.source)) return;
    seenSources.add(entry.source);
    const owner = nameOwners.get(entry.name);
    if (owner !== undefined) {
      result.skipped.push({ path: entry.source, reason: `same snapshot name ${entry.name} as ${owner}` });
      return;
    }
    nameOwners.set(entry.name, entry.source);
    result.entries.push(entry);
  };

  /** `follow` is true for a listed root only: a root that is a link is followed. */
  const visit = async (path: string, name: string, follow: boolean, accept: (path: string) => boolean): Promise<void> => {
    if (stop.aborted) {
      cut = true;
      return;
    }
    if (isExcluded(path, name)) {
      result.excluded += 1;
      return;
    }
    try {
      const info = follow ? await stat(path) : await lstat(path);
      if (info.isSymbolicLink()) {
        if (accept(path)) add({ type: 'symlink', source: path, name, target: await readlink(path) });
      } else if (info.isDirectory()) {
        // A directory a glob matched is wanted whole.
        const inner = accept(path) ? () => true : accept;
        const children = (await readdir(path)).sort();
        for (const child of children) await visit(join(path, child), `${name}/${child}`, false, inner);
      } else if (!accept(path)) {
        return;
      } else if (info.isFile()) {
        // A listed link is read through its real path: the reader never follows links.
        const source = follow ? await realpath(path) : path;
        add({ type: 'file', source, name, size: info.size, mtimeMs: info.mtimeMs, mode: info.mode & 0o7777, dev: info.dev, ino: info.ino });
      } else {
        result.skipped.push({ path, reason: 'not a regular file, directory or symlink' });
      }
    } catch (error) {
      result.skipped.push({ path, reason: readError(error) });
    }
  };

  for (const root of paths) {
    if (stop.aborted) {
      result.skipped.push({ path: root, reason: 'not listed: the cut-off came first' });
      continue;
    }
    const scan = picomatch.scan(root);
    if (scan.isGlob) {
      await visit(scan.base, baseName(scan.base), true, picomatch(root, { dot: true }));
    } else {
      await visit(root, baseName(root), true, () => true);
    }
    if (cut) result.skipped.push({ path: root, reason: 'listing stopped at the cut-off: not every file below it was looked at' });
  }
  return result;
}

function baseName(path: string): string {
  return basename(path) || 'root';
}

function excludeMatcher(patterns: readonly string[]): (path: string, name: string) => boolean {
  const byBase = patterns.filter((p) => !p.includes('/'));
  const byPath = patterns.filter((p) => p.includes('/'));
  const baseMatch = byBase.length ? picomatch(byBase, { dot: true }) : () => false;
  const pathMatch = byPath.length ? picomatch(byPath, { dot: true }) : () => false;
  return (path, name) => baseMatch(basename(path)) || pathMatch(path) || pathMatch(name);
}

function readError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return `cannot read: ${code ?? (error as Error).message}`;
}
