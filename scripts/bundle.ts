/**
 * Bundles the shipped agent with esbuild into dist/bundle/ (what the .deb installs):
 *   preemptd.mjs     the entry (src/main.ts): turns Node's compile cache on, then loads the CLI
 *   read-worker.mjs  the snapshot reading thread, started by URL next to the chunk that needs it
 *   chunk-*.mjs      shared code, and lazy chunks for what only a command, a notice, a snapshot or
 *                    a store needs (they are import()ed in src/, so esbuild splits them off); the
 *                    small modules many of them share sit in one chunk (scripts/bundle-shared-chunk.ts)
 *   *.mjs.map        source maps (NODE_OPTIONS=--enable-source-maps maps stack traces to src/)
 * Identifiers are not minified, so stack traces stay readable without the maps.
 * Packages in EXTERNAL are not bundled: the installer copies them into node_modules beside.
 *
 *   node scripts/bundle.ts [OUTDIR]
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';
import { planSharedChunk, sharedChunkPlugin, type SharedChunkPlan } from './bundle-shared-chunk.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @node-rs/crc32 loads a native add-on picked per platform at run time; systemd-notify is
 * loaded through createRequire (it ships no types). Both stay packages in node_modules.
 */
export const EXTERNAL = ['@node-rs/crc32', 'systemd-notify'];

/**
 * yargs imports Node's `assert` for two sanity checks it runs on every start, and pino's
 * sonic-boom and thread-stream require it for one check each; loading assert costs more than
 * yargs itself (30-80 ms here). The bundle gives them the checks as plain comparisons; assert is
 * loaded only to build the error when one fails.
 */
const PLAIN_ASSERT = `
const fail = (message, actual, expected, operator) => {
  const { AssertionError } = process.getBuiltinModule('node:assert');
  throw new AssertionError({ message, actual, expected, operator });
};
const ok = (value, message) => { if (!value) fail(message, value, true, '=='); };
const strictEqual = (actual, expected, message) => { if (!Object.is(actual, expected)) fail(message, actual, expected, 'strictEqual'); };
const notStrictEqual = (actual, expected, message) => { if (Object.is(actual, expected)) fail(message, actual, expected, 'notStrictEqual'); };
module.exports = Object.assign(ok, { ok, strictEqual, notStrictEqual });
`;
const PLAIN_ASSERT_USERS = /\/node_modules\/(yargs|sonic-boom|thread-stream)\//;
const plainAssert: Plugin = {
  name: 'plain-assert',
  setup(build) {
    build.onResolve({ filter: /^assert$/ }, ({ importer }) => (PLAIN_ASSERT_USERS.test(importer) ? { path: 'assert', namespace: 'plain-assert' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'plain-assert' }, () => ({ loader: 'js', contents: PLAIN_ASSERT }));
  },
};

/**
 * Node's built-ins, imported by ES modules (ours and the packages'), are taken with
 * process.getBuiltinModule behind a view of getters. An ES import of a built-in reads every
 * export, and so would esbuild's interop (it asks for each property's descriptor): both run the
 * lazy exports' loaders. `fs` loads fs/promises and with it streams, readline and the REPL's
 * history; `util` loads parseArgs, diff and worker_threads: 35 internal modules that neither
 * --version nor an idle agent uses (importing fs and util so: 4-9 ms on a quiet machine). The view
 * reads each export where it is used, and loads the built-in itself only then: its export names
 * are taken here, from the Node that builds (the one the package ships), so that a chunk that
 * imports crypto, child_process, zlib or http2 for a step or a store loads none of them before
 * READY=1 (at load 10: crypto 4 ms, fs/promises 4 ms, the others about 1 ms each).
 * A built-in that is a function (events, assert, module) is taken as it is: its exports are not lazy.
 * require() calls of the bundled CommonJS packages keep Node's own require.
 */
const BUILTIN = new RegExp(`^(node:)?(${builtinModules.map((name) => name.replace(/\//g, '\\/')).join('|')})$`);
function builtinView(name: string): string {
  const builtin = process.getBuiltinModule(name) as object;
  if (typeof builtin === 'function') return `module.exports = process.getBuiltinModule(${JSON.stringify(name)});`;
  return `
let builtin;
const load = () => (builtin ??= process.getBuiltinModule(${JSON.stringify(name)}));
const view = {};
for (const key of ${JSON.stringify(Object.getOwnPropertyNames(builtin))}) Object.defineProperty(view, key, { get: () => load()[key], set: (value) => { load()[key] = value; }, enumerable: true });
module.exports = view;
`;
}
const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(build) {
    build.onResolve({ filter: BUILTIN }, ({ path, kind }) => (kind === 'require-call' ? undefined : { path: path.replace(/^node:/, ''), namespace: 'lazy-builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, ({ path }) => ({ loader: 'js', contents: builtinView(`node:${path}`) }));
  },
};

/**
 * Packages that build Intl objects at load: string-width (yargs, cliui) an Intl.Segmenter, got's
 * @sindresorhus/is two Intl.ListFormat for its error messages. Building them loads ICU's data:
 * 2.5 MB and 6.4 MB of resident memory in an agent that, idle, never uses them. The bundle
 * builds each on first use. The build fails when a listed package no longer has the line.
 */
const INTL_AT_LOAD = /node_modules\/(string-width\/index|@sindresorhus\/is\/distribution\/index)\.js$/;
const INTL_LINE = /^const (\w+) = new Intl\.(\w+)\((.*)\);$/gm;
const LAZY_INSTANCE = `const __preemptdLazy = (make) => { let made; const instance = () => (made ??= make()); return new Proxy({}, { get: (_target, key) => { const value = instance()[key]; return typeof value === 'function' ? value.bind(instance()) : value; } }); };\n`;
const lazyIntl: Plugin = {
  name: 'lazy-intl',
  setup(build) {
    build.onLoad({ filter: INTL_AT_LOAD }, ({ path }) => {
      const source = readFileSync(path, 'utf8');
      const contents = source.replace(INTL_LINE, 'const $1 = __preemptdLazy(() => new Intl.$2($3));');
      if (contents === source) throw new Error(`${path}: no longer builds an Intl object at load as \`const x = new Intl.X(...);\`: update INTL_AT_LOAD`);
      return { loader: 'js', contents: LAZY_INSTANCE + contents };
    });
  },
};

/** Replaces one exact piece of a file (a package's, or ours); the build fails when the piece is gone. */
function patchPackage(name: string, file: RegExp, from: string, to: string): Plugin {
  return {
    name,
    setup(build) {
      build.onLoad({ filter: file }, ({ path }) => {
        const source = readFileSync(path, 'utf8');
        if (!source.includes(from)) throw new Error(`${path}: no longer holds \`${from}\`: update ${name} in scripts/bundle.ts`);
        return { loader: path.endsWith('.ts') ? 'ts' : 'js', contents: source.replace(from, to) };
      });
    },
  };
}

/**
 * yargs renders a command's whole help (cliui, string-width, an Intl.Segmenter) each time it
 * runs the command, in case the handler later calls showHelp(); our handlers never do (a usage
 * error points to --help). In `run` that rendering sat between the handler's start and READY=1.
 * The bundle leaves the help to be rendered when it is asked for.
 */
const yargsHelpOnDemand = patchPackage('yargs-help-on-demand', /node_modules\/yargs\/build\/lib\/usage\.js$/, 'cachedHelpMessage = this.help();', 'cachedHelpMessage = undefined;');

/**
 * Each yargs instance first guesses its version: it walks up from the entry reading every
 * folder for a package.json, and where none is found (an installed bundle) fails an assertion,
 * which loads node:assert (1-3 ms before READY=1). src/commands/program.ts gives the version.
 */
const yargsVersionGiven = patchPackage('yargs-version-given', /node_modules\/yargs\/build\/lib\/yargs-factory\.js$/, 'yargs.version();', '');

/**
 * got's HTTP/2 client reads node:http2's constants at load, which loads http2 and with it tls
 * and OpenSSL's start: 4 MB of an idle agent's RSS that only an HTTP/2 request (we send none)
 * or an https URL needs. The bundle gives the eight constants as they are: protocol values
 * (RFC 9113 pseudo-headers and error codes) that Node cannot change.
 */
const gotHttp2OnDemand = patchPackage(
  'got-http2-on-demand',
  /node_modules\/got\/dist\/source\/core\/utils\/http2-client\.js$/,
  '} = http2.constants;',
  "} = { HTTP2_HEADER_AUTHORITY: ':authority', HTTP2_HEADER_METHOD: ':method', HTTP2_HEADER_PATH: ':path', HTTP2_HEADER_SCHEME: ':scheme', HTTP2_HEADER_STATUS: ':status', HTTP2_METHOD_CONNECT: 'CONNECT', NGHTTP2_CANCEL: 8, NGHTTP2_NO_ERROR: 0 };",
);

/**
 * got and its decompress-response ask node:zlib at load whether it has zstd, which loads zlib
 * (2 MB of RSS) in an agent that has not received an HTTP body yet. Node has zstd from 23.8
 * and 22.15: the bundle asks the version instead, and zlib loads with the first body to inflate.
 */
const zstdByVersion = patchPackage(
  'zstd-by-version',
  /node_modules\/(decompress-response\/index|got\/dist\/source\/core\/utils\/decompress-response)\.js$/,
  "typeof zlib.createZstdDecompress === 'function'",
  "(([major, minor]) => major > 23 || (major === 23 && minor >= 8) || (major === 22 && minor >= 15))(process.versions.node.split('.').map(Number))",
);

/**
 * src/lib/on-demand.ts loads handlebars and re2js with a require of its own (tsc's output and
 * the tests run unbundled). Without it, esbuild takes the calls as require()s of bundled
 * packages: each package's code runs on its loader's first call, not when its chunk loads
 * (READY=1 0.89-0.90x of the bundle before: docs/benchmarks.md). The build fails when the line is gone.
 */
const requireOnDemand = patchPackage('require-on-demand', /\/src\/lib\/on-demand\.ts$/, 'const require = createRequire(import.meta.url);', '');

export async function bundle(outdir: string): Promise<void> {
  rmSync(outdir, { recursive: true, force: true });
  // Built twice: the first build's chunks say which small modules to gather (bundle-shared-chunk.ts, which says why these entries are left out).
  const first = await buildOnce(outdir, []);
  const plan = planSharedChunk(first.metafile, ['src/main.ts', 'src/cli.ts', 'src/snapshots/read-worker.ts']);
  const result = await buildOnce(outdir, [sharedChunkPlugin(plan, repo)]);
  checkSharedChunk(result.metafile, plan);
  mkdirSync(outdir, { recursive: true });
  // The CLI's `#!/usr/bin/env node` (the npm bin) becomes an empty line: the bundle is run by the
  // package's own node, never as a script (lintian would ask for a dependency on Debian's nodejs).
  // An empty line, so the source maps still point at the right lines.
  for (const file of result.outputFiles) writeFileSync(file.path, file.path.endsWith('.mjs') ? file.text.replace(/^#!.*/, '') : file.contents);
  writeFileSync(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
}

/** The build fails when the gathered modules did not end in one chunk (a plugin before took an entry's load). */
function checkSharedChunk(meta: Metafile, plan: SharedChunkPlan): void {
  const holding = Object.entries(meta.outputs).filter(([, output]) => plan.modules.some((input) => input in output.inputs));
  if (holding.length > 1) throw new Error(`the small shared modules ended in ${holding.length} chunks, not one: ${holding.map(([path]) => path).join(', ')}`);
}

async function buildOnce(outdir: string, extraPlugins: Plugin[]) {
  return build({
    absWorkingDir: repo,
    entryPoints: { preemptd: 'src/main.ts', 'read-worker': 'src/snapshots/read-worker.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    // The ES module builds (the AWS SDK's dist-es): tree-shaken, and an import() of them has
    // named exports (an import() of a CommonJS build, split off, has only `default`).
    mainFields: ['module', 'main'],
    // Flat: chunks sit beside the entries, so read.ts finds ./read-worker.js from any chunk.
    chunkNames: 'chunk-[hash]',
    // .mjs: ES modules wherever they are installed, without a package.json to say so.
    outExtension: { '.js': '.mjs' },
    external: EXTERNAL,
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    legalComments: 'eof',
    // Bundled CommonJS packages require() Node's built-ins; ESM output has no `require` of its own.
    banner: { js: "import { createRequire as __preemptdRequire } from 'node:module'; const require = __preemptdRequire(import.meta.url);" },
    plugins: [plainAssert, lazyBuiltins, lazyIntl, yargsHelpOnDemand, yargsVersionGiven, requireOnDemand, gotHttp2OnDemand, zstdByVersion, ...extraPlugins],
    metafile: true,
    logLevel: 'warning',
    write: false,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle(resolve(process.argv[2] ?? join(repo, 'dist/bundle')));
