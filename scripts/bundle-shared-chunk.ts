/**
 * Gathers the bundle's small shared chunks into one (scripts/bundle.ts runs esbuild twice).
 *
 * esbuild puts each module in the chunk of the entry points (ours, and every import() target)
 * that reach it, so a module shared by a set of entries no other module shares gets a chunk of
 * its own: a 500-byte helper, one view of a built-in. `run` opened 55 chunks before READY=1, 36 of
 * them under 2 KB, and each costs Node a resolve, a read, a compile-cache lookup and a link (about
 * 0.45 ms here: 50 chained tiny modules against one file holding the same code, compile cache warm).
 *
 * esbuild has no manual chunks. So after a first build, the modules of the small chunks are
 * named in one virtual module, which each entry that reaches any of them also imports: they are
 * then all reached by the same entries, and esbuild gives them one chunk. Left out: a module whose
 * static imports are not all taken (it would pull a large module along), one that imports a
 * package left external (@node-rs/crc32's add-on would load with every command), and one that a
 * kept-out entry reaches (scripts/bundle.ts): the bundle's first file, which turns on the compile
 * cache (what it imports statically loads before); the CLI's, which every command loads (with it,
 * `--help` loaded the whole shared chunk: 31-33 against 29-30 ms, READY=1 the same); the read worker.
 */
import { readFile } from 'node:fs/promises';
import type { Metafile, Plugin } from 'esbuild';

/** A chunk smaller than this is gathered; larger ones are worth their own load. */
export const SMALL_CHUNK_BYTES = 4096;

const SHARED = 'preemptd-shared';

export interface SharedChunkPlan {
  /** Inputs (metafile paths) to gather, each imported by the shared module. */
  readonly modules: readonly string[];
  /** Entry points (metafile paths) that also import the shared module. */
  readonly entries: readonly string[];
}

/** What to gather, from the metafile of a build with splitting; `keepOut` lists entries to leave as they are. */
export function planSharedChunk(meta: Metafile, keepOut: readonly string[]): SharedChunkPlan {
  const entries = Object.values(meta.outputs).flatMap((output) => (output.entryPoint ? [output.entryPoint] : []));
  const staticImports = (input: string) => (meta.inputs[input]?.imports ?? []).filter((edge) => !edge.external && edge.kind !== 'dynamic-import').map((edge) => edge.path);
  // A package left external (a native add-on) would load in every entry that imports the shared module.
  const importsExternal = (input: string) => (meta.inputs[input]?.imports ?? []).some((edge) => edge.external && edge.kind !== 'dynamic-import');
  const reachedBy = new Map<string, Set<string>>();
  for (const entry of entries) {
    const seen = new Set([entry]);
    for (const input of seen) for (const next of staticImports(input)) seen.add(next);
    for (const input of seen) (reachedBy.get(input) ?? reachedBy.set(input, new Set()).get(input)!).add(entry);
  }
  const entrySet = new Set(entries);
  const injectable = (entry: string) => !keepOut.includes(entry) && meta.inputs[entry]?.format === 'esm';
  const candidates = new Set(
    Object.values(meta.outputs)
      .filter((output) => !output.entryPoint && output.bytes < SMALL_CHUNK_BYTES)
      .flatMap((output) => Object.keys(output.inputs))
      // Ours and the views of built-ins: a package may say it has no side effects, and esbuild then drops a bare import of it.
      .filter((input) => !entrySet.has(input) && /^(src\/|lazy-builtin:)/.test(input) && !importsExternal(input) && [...(reachedBy.get(input) ?? [])].every(injectable)),
  );
  // Closed under static imports: a module whose import is left out is left out too.
  for (let changed = true; changed; ) {
    changed = false;
    for (const input of candidates) {
      if (staticImports(input).every((next) => candidates.has(next))) continue;
      candidates.delete(input);
      changed = true;
    }
  }
  const modules = [...candidates].sort();
  const entriesToImport = new Set(modules.flatMap((input) => [...reachedBy.get(input)!]));
  return { modules, entries: [...entriesToImport].sort() };
}

/**
 * The second build's plugin: the shared module, and its import in each planned entry. The import
 * goes last, so lines (source maps) and a leading `#!` stay; imports are hoisted, and the entry's
 * own imports, evaluated first, are what its code needs first.
 */
export function sharedChunkPlugin(plan: SharedChunkPlan, repo: string): Plugin {
  const specifier = (input: string) => (input.startsWith('lazy-builtin:') ? `node:${input.slice('lazy-builtin:'.length)}` : `${repo}/${input}`);
  return {
    name: 'shared-chunk',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^${SHARED}$`) }, () => ({ path: SHARED, namespace: SHARED }));
      build.onLoad({ filter: /.*/, namespace: SHARED }, () => ({ loader: 'js', resolveDir: repo, contents: plan.modules.map((input) => `import ${JSON.stringify(specifier(input))};`).join('\n') }));
      if (plan.entries.length === 0) return;
      // Only the planned entries come to this callback, not each of the bundle's ~2,000 files.
      const planned = new RegExp(`^(${plan.entries.map((entry) => `${repo}/${entry}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`);
      build.onLoad({ filter: planned }, async ({ path }) => ({ loader: /\.[cm]?ts$/.test(path) ? 'ts' : 'js', contents: `${await readFile(path, 'utf8')}\nimport '${SHARED}';\n` }));
    },
  };
}
