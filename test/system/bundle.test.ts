import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { runCli } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { TestResources, writeAgentConfig } from '../helpers/resources.js';

/**
 * What the .deb ships: the esbuild bundle (scripts/bundle.ts, dist/bundle) as
 * packaging/install-bundle.sh installs it. The other system tests start dist/src/cli.js (tsc's
 * output, one file per module); this file checks that the bundle does the same work: the CLI,
 * a notice running snapshot steps (the read worker, the stores, tar) and a restore.
 */
const execFileAsync = promisify(execFile);
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const resources = new TestResources('preemptd-bundle-');

interface Metafile {
  outputs: Record<string, { imports: Array<{ path: string; kind: string; external?: boolean }>; inputs: Record<string, unknown>; entryPoint?: string; bytes: number }>;
}

let dir: string;
let cli: string;
beforeAll(async () => {
  if (!existsSync('dist/bundle/preemptd.mjs')) throw new Error('dist/bundle is missing: bundle first (npm run build; npm test does)');
  dir = mkdtempSync(join(tmpdir(), 'preemptd-bundle-install-'));
  await execFileAsync('sh', ['packaging/install-bundle.sh', dir]);
  cli = join(dir, 'lib/preemptd.mjs');
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('holds the bundle and only the packages it leaves external, with this platform\'s add-on alone', () => {
  const lib = readdirSync(join(dir, 'lib'));
  expect(lib).toEqual(expect.arrayContaining(['preemptd.mjs', 'preemptd.mjs.map', 'read-worker.mjs']));
  expect(lib.filter((file) => !/^(preemptd|read-worker|chunk-[A-Z0-9]+)\.mjs(\.map)?$/.test(file))).toEqual([]);
  expect(readdirSync(join(dir, 'node_modules')).sort()).toEqual(['@node-rs', 'systemd-notify']);
  expect(readdirSync(join(dir, 'node_modules/@node-rs')).sort()).toEqual(['crc32', `crc32-${process.platform}-${process.arch}-gnu`]);
});

test('runs the CLI: --version and --help', async () => {
  expect((await runCli(['--version'], {}, 20_000, cli)).stdout.trim()).toBe(VERSION);
  const help = await runCli(['--help'], {}, 20_000, cli);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('preemptd <command> [options]');
});

test.each([['--help'], ['--version']])('`%s` loads neither node:crypto (notice ids load it on first use) nor node:assert (yargs gets plain checks), nor the lazy exports of fs and util', async (flag) => {
  // Lists, as the process exits, the built-in modules it loaded.
  const probe = `data:text/javascript,process.on('exit', () => console.error('LOADED ' + process.moduleLoadList.join(',')))`;
  const { stderr } = await execFileAsync(process.execPath, ['--import', probe, cli, flag]);
  const loaded = /LOADED (.*)/.exec(stderr)![1]!.split(',');
  expect(loaded).toContain('NativeModule fs');
  // An ES import of fs or util reads every export, which loads fs/promises (streams, readline) and util's parseArgs, diff and worker_threads; the bundle takes built-ins as CommonJS views.
  expect(loaded.filter((name) => /^NativeModule (crypto|assert|internal\/fs\/promises|internal\/util\/parse_args\/parse_args|internal\/util\/diff|worker_threads)$/.test(name))).toEqual([]);
});

test('an idle agent loads none of the built-ins only steps, stores or commands use (crypto, tls, https, zlib, http2, dns/promises) though its chunks import them, nor node:assert', async () => {
  const work = resources.tempDir();
  const metadata = await resources.simulator({ provider: 'aws' });
  const file = join(work, 'config.yaml');
  writeFileSync(file, [`provider: aws`, `metadataUrl: ${metadata.url}`, `stateDir: ${join(work, 'state')}`, 'server: { listen: "127.0.0.1:0" }', 'pollInterval: 100ms', 'steps: []'].join('\n'));
  const probe = join(work, 'probe.mjs');
  writeFileSync(probe, `process.on('exit', () => console.error('LOADED ' + process.moduleLoadList.join(',')));`);
  const agent = resources.agent(['--config', file], { NODE_OPTIONS: `--import=${probe}` }, cli);
  await agent.waitForLog((line) => line.msg === 'daemon watching');
  await until(() => (metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0) >= 5);
  agent.child.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
  const loaded = /LOADED (.*)/.exec(agent.output())![1]!.split(',');
  expect(loaded).toContain('NativeModule http');
  // The bundle's views of built-ins load one on its first use, not where a chunk imports it (scripts/bundle.ts lazyBuiltins);
  // yargs gives the version it is told without looking for a package.json, pino's streams get plain checks (plainAssert).
  expect(loaded.filter((name) => /^NativeModule (crypto|tls|https|zlib|http2|dns\/promises|assert)$/.test(name))).toEqual([]);
});

test('an idle agent whose plan sends HTTP loads got ahead of a notice without node:http2, tls, crypto or zlib (scripts/bundle.ts gotHttp2OnDemand, zstdByVersion)', async () => {
  const work = resources.tempDir();
  const metadata = await resources.simulator({ provider: 'aws' });
  const file = join(work, 'config.yaml');
  const steps = ['steps:', '  - { name: tell-ops, webhook: { url: "http://127.0.0.1:9/hook" } }'];
  writeFileSync(file, [`provider: aws`, `metadataUrl: ${metadata.url}`, `stateDir: ${join(work, 'state')}`, 'pollInterval: 100ms', ...steps].join('\n'));
  const probe = join(work, 'probe.mjs');
  const hooks = `import { registerHooks } from 'node:module'; registerHooks({ load(url, context, next) { console.error('MODULE ' + url); return next(url, context); } });`;
  writeFileSync(probe, `${hooks}\nprocess.on('exit', () => console.error('LOADED ' + process.moduleLoadList.join(',')));`);
  const meta = JSON.parse(readFileSync('dist/bundle/meta.json', 'utf8')) as Metafile;
  const gotChunks = Object.entries(meta.outputs).flatMap(([output, { inputs }]) => (Object.keys(inputs).some((input) => input.includes('node_modules/got/')) ? [output.replace(/.*\//, '')] : []));
  expect(gotChunks).not.toEqual([]);
  const agent = resources.agent(['--config', file], { NODE_OPTIONS: `--import=${probe}` }, cli);
  await until(() => gotChunks.every((chunk) => agent.output().includes(`/${chunk}`)));
  // Its top level has run once a few more polls went by.
  const polls = metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0;
  await until(() => (metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0) >= polls + 3);
  agent.child.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
  const loaded = /LOADED (.*)/.exec(agent.output())![1]!.split(',');
  expect(loaded.filter((name) => /^NativeModule (tls|https|http2|crypto|zlib)$/.test(name))).toEqual([]);
});

test('the bundled http step reads gzip and zstd bodies (zlib loads with the first one: scripts/bundle.ts zstdByVersion)', async () => {
  const work = resources.tempDir();
  const server = createServer((request, response) => {
    const zstd = request.url!.includes('zstd');
    const body = Buffer.from('{"drained": true}');
    response.writeHead(200, { 'content-encoding': zstd ? 'zstd' : 'gzip' }).end(zstd ? zstdCompressSync(body) : gzipSync(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const file = join(work, 'config.yaml');
  // A JSON condition: bytes left compressed do not parse (a short zstd frame may hold its text raw).
  const step = (name: string, path: string) => `  - { name: ${name}, timeout: 5s, http: { url: "${base}/${path}", until: { json: { path: drained, equals: true }, interval: 100ms } } }`;
  writeFileSync(file, ['provider: aws', 'metadataUrl: http://127.0.0.1:9/', `stateDir: ${join(work, 'state')}`, 'steps:', step('gzip', 'drain'), step('zstd', 'drain-zstd')].join('\n'));
  try {
    const result = await runCli(['simulate', '--config', file, '--run', '--json'], {}, 20_000, cli);
    const steps = (JSON.parse(result.stdout) as { steps: { name: string; status: string }[] }).steps;
    expect(steps.map(({ name, status }) => ({ name, status }))).toEqual([
      { name: 'gzip', status: 'ok' },
      { name: 'zstd', status: 'ok' },
    ]);
  } finally {
    server.close();
  }
});

/** Prints, as the process exits, the bundle's files it loaded (module.registerHooks sees every ES module load). */
const LOAD_PROBE_SOURCE = `import { registerHooks } from 'node:module'; const loaded = []; registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } }); process.on('exit', () => console.error('MODULES ' + JSON.stringify(loaded)))`;
const LOAD_PROBE = `data:text/javascript,${LOAD_PROBE_SOURCE}`;
function modulesLoaded(stderr: string): string[] {
  return (JSON.parse(/MODULES (.*)/.exec(stderr)![1]!) as string[]).filter((url) => url.startsWith('file:')).map((url) => url.replace(/.*\//, ''));
}
/** What the bundle's files (as loaded) hold: the sources and packages bundled into them. */
function inputsOf(files: string[]): string[] {
  const meta = JSON.parse(readFileSync('dist/bundle/meta.json', 'utf8')) as Metafile;
  return files.flatMap((file) => Object.keys(meta.outputs[`dist/bundle/${file}`]?.inputs ?? {}));
}

test('`--help` prints the generated text without loading yargs or the declarations; other command lines parse with yargs', async () => {
  const help = await execFileAsync(process.execPath, ['--import', LOAD_PROBE, cli, '--help'], { env: { ...process.env, YARGS_DISABLE_WRAP: '' } });
  const inputs = inputsOf(modulesLoaded(help.stderr));
  expect(inputs).toContain('src/commands/program-help-text.ts');
  expect(inputs.filter((input) => /node_modules\/yargs|src\/commands\/program\.ts/.test(input))).toEqual([]);
  // The same text as yargs prints (a flag beside --help takes yargs' way).
  const viaYargs = await execFileAsync(process.execPath, ['--import', LOAD_PROBE, cli, '--help', '--config', '/none.yaml']);
  expect(inputsOf(modulesLoaded(viaYargs.stderr))).toContain('src/commands/program.ts');
  expect(help.stdout).toBe(viaYargs.stdout);
});

/** Counts the Intl objects a process builds (ICU's data is megabytes of resident memory), printed as it exits. */
const INTL_PROBE_SOURCE = `const built = []; for (const name of ['Segmenter', 'ListFormat', 'DateTimeFormat', 'NumberFormat', 'Collator']) Intl[name] = new Proxy(Intl[name], { construct: (target, args, newTarget) => (built.push(name), Reflect.construct(target, args, newTarget)) }); process.on('exit', () => console.error('INTL ' + JSON.stringify(built)));`;

/** Prints, as the process exits, whether handlebars has run (it adds require() handlers for .hbs files as it loads). */
const HANDLEBARS_PROBE_SOURCE = `process.on('exit', () => console.error('HBS ' + ('.hbs' in process.getBuiltinModule('node:module').createRequire(import.meta.url).extensions)))`;

test('the agent, up to a notice, loads neither yargs nor the declarations for `run --config FILE`, loads prom-client\'s metric classes without its index (its Pushgateway, cluster aggregation, default metrics), builds no Intl object and runs no handlebars', async () => {
  const work = resources.tempDir();
  const probe = join(work, 'probe.mjs');
  writeFileSync(probe, `${LOAD_PROBE_SOURCE};\n${INTL_PROBE_SOURCE};\n${HANDLEBARS_PROBE_SOURCE}`);
  const metadata = await resources.simulator({ provider: 'aws' });
  const file = join(work, 'config.yaml');
  // The webhook and http steps load got (and its @sindresorhus/is, which builds Intl.ListFormat at load) after the first metadata read.
  writeFileSync(file, [`provider: aws`, `metadataUrl: ${metadata.url}`, `stateDir: ${join(work, 'state')}`, `noticeFile: ${join(work, 'notice.json')}`, 'server: { listen: "127.0.0.1:0" }', 'pollInterval: 100ms', 'steps:', '  - { name: tell, webhook: { url: "http://127.0.0.1:9/hook" } }'].join('\n'));
  const agent = resources.agent(['--config', file], { NODE_OPTIONS: `--import=${probe}` }, cli);
  await agent.waitForLog((line) => line.msg === 'daemon watching');
  // A second of polls after the first: the steps' preload (got) has long run.
  await until(() => (metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0) >= 10);
  agent.child.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
  const inputs = inputsOf(modulesLoaded(agent.output()));
  expect(inputs).toEqual(expect.arrayContaining(['src/observe/metrics.ts', 'node_modules/prom-client/lib/registry.js', 'node_modules/@sindresorhus/is/distribution/index.js']));
  // The unit's plain `run` line is read from the flags' declarations without yargs (commands/run-line.ts).
  expect(inputs).toContain('src/commands/run-line.ts');
  expect(inputs.filter((input) => /node_modules\/yargs|src\/commands\/program\.ts/.test(input))).toEqual([]);
  expect(inputs.filter((input) => /node_modules\/prom-client\/(index|lib\/(pushgateway|cluster|defaultMetrics))\.js/.test(input))).toEqual([]);
  // No yargs, so no help rendered before the command runs (string-width's Segmenter); got's ListFormat waits for an error message.
  expect(JSON.parse(/INTL (.*)/.exec(agent.output())![1]!)).toEqual([]);
  // A webhook without a template never runs handlebars (lib/on-demand.ts), which registers require() handlers for .hbs files as it loads.
  expect(/HBS (.*)/.exec(agent.output())![1]).toBe('false');
});

test('an idle agent opens one chunk for the small modules its entries share, not one each (scripts/bundle-shared-chunk.ts)', async () => {
  const work = resources.tempDir();
  const probe = join(work, 'probe.mjs');
  writeFileSync(probe, LOAD_PROBE_SOURCE);
  const metadata = await resources.simulator({ provider: 'aws' });
  const file = join(work, 'config.yaml');
  writeFileSync(file, [`provider: aws`, `metadataUrl: ${metadata.url}`, `stateDir: ${join(work, 'state')}`, 'server: { listen: "127.0.0.1:0" }', 'pollInterval: 100ms', 'steps: []'].join('\n'));
  const agent = resources.agent(['--config', file], { NODE_OPTIONS: `--import=${probe}` }, cli);
  await agent.waitForLog((line) => line.msg === 'daemon watching');
  await until(() => (metadata.requests.get('/latest/meta-data/spot/instance-action') ?? 0) >= 3);
  agent.child.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
  const meta = JSON.parse(readFileSync('dist/bundle/meta.json', 'utf8')) as Metafile;
  // The packages left external (systemd-notify, @node-rs/crc32) load from node_modules, outside the bundle.
  const loaded = modulesLoaded(agent.output()).flatMap((file) => meta.outputs[`dist/bundle/${file}`] ?? []);
  const small = loaded.filter((output) => !output.entryPoint && output.bytes < 4096);
  // Each file costs Node a read, a compile-cache lookup and a link. Without the gathering, 37 of the 55 files it opened before READY=1 were small ones.
  // What stays small is reached by an entry kept out (the bundle's first file, the CLI's, the read worker) or imports an external package.
  expect(loaded.some((output) => 'preemptd-shared:preemptd-shared' in output.inputs)).toBe(true);
  expect(small.length).toBeLessThanOrEqual(16);
});

test('a config with a template and a pattern runs handlebars and re2js from the bundle, on first use', async () => {
  const work = resources.tempDir();
  const file = join(work, 'config.yaml');
  writeFileSync(
    file,
    [
      'provider: aws',
      'metadataUrl: http://127.0.0.1:9',
      `stateDir: ${join(work, 'state')}`,
      'steps:',
      '  - { name: tell, webhook: { url: "http://127.0.0.1:9/hook", format: template, template: "{{#if kind}}x" } }',
      '  - { name: stop, signal: { match: "(trainer", signal: SIGTERM } }',
    ].join('\n'),
  );
  const result = await runCli(['check', '--config', file], {}, 20_000, cli);
  expect(result.code).toBe(78);
  expect(result.stdout).toContain('steps[0].webhook.template: not a valid handlebars template: Parse error on line 1');
  expect(result.stdout).toContain('steps[1].signal.match: got "(trainer": not a valid regular expression in RE2 syntax');
  expect(result.stdout).toContain('missing closing )');
});

test('turns Node\'s compile cache on at its entry, in the temp dir when NODE_COMPILE_CACHE is unset', async () => {
  const tmp = resources.tempDir();
  expect((await runCli(['--version'], { NODE_COMPILE_CACHE: undefined, TMPDIR: tmp }, 20_000, cli)).code).toBe(0);
  // Node keeps one directory per Node version and cache format, holding one file per module compiled.
  const cached = readdirSync(join(tmp, 'node-compile-cache'), { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  expect(cached.length).toBeGreaterThan(1);
});

// handlebars and re2js are among them, but run only when a config has a template or a pattern (lib/on-demand.ts).
test('the daemon loads no cloud SDK, object store, tar, got or Kubernetes client before a notice: they are lazy chunks', () => {
  const meta = JSON.parse(readFileSync('dist/bundle/meta.json', 'utf8')) as Metafile;
  const holding = (source: string) => Object.keys(meta.outputs).find((output) => output.endsWith('.mjs') && source in meta.outputs[output]!.inputs)!;
  // Everything `preemptd run` loads up to a notice: the CLI's chunk, the run command's, and what they import statically.
  const loaded = new Set<string>();
  const visit = (output: string) => {
    if (loaded.has(output)) return;
    loaded.add(output);
    for (const { path, kind, external } of meta.outputs[output]!.imports) if (kind === 'import-statement' && !external) visit(path);
  };
  for (const source of ['src/cli.ts', 'src/commands/run.ts']) visit(holding(source));
  const inputs = [...loaded].flatMap((output) => Object.keys(meta.outputs[output]!.inputs));
  expect(inputs).toContain('src/daemon/daemon.ts');
  // The table of what each simulated cloud can show (simulator/kinds.ts) comes with the CLI's declarations; the simulator itself does not.
  // kubernetes/node.ts (a Node's fields, and requests made with a client given to them) is small and shared: it sits in the shared chunk.
  expect(inputs.filter((input) => /node_modules\/(@aws-sdk|@smithy|@google-cloud|@azure|got|tar-stream)\/|src\/stores\/(s3|gcs|azure|file)\.ts|src\/simulator\/(?!kinds\.ts)|src\/demo\/|src\/kubernetes\/(?!node\.ts)|src\/providers\/kubernetes\/provider\.ts|src\/snapshots\/(run|restore)\.ts/.test(input))).toEqual([]);
});

test('a notice runs snapshot steps (files through the read worker, a gzip archive) and restore gets both back', async () => {
  const work = resources.tempDir();
  const data = join(work, 'data');
  mkdirSync(join(data, 'ckpt'), { recursive: true });
  const model = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  writeFileSync(join(data, 'ckpt/model.pt'), model);
  writeFileSync(join(data, 'train.log'), 'step 1\n');
  const store = join(work, 'store');
  const metadata = await resources.simulator({ provider: 'aws' });
  const file = writeAgentConfig(work, {
    metadataUrl: metadata.url,
    steps: [
      `  - { name: files, snapshot: { paths: ["${data}"], to: "file://${store}/files/" } }`,
      `  - { name: archive, snapshot: { paths: ["${data}"], to: "file://${store}/archive/", mode: archive, compression: gzip } }`,
    ],
  });
  const agent = resources.agent(['--config', file], {}, cli);
  await agent.waitForLog((line) => line.msg === 'daemon watching');
  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  await agent.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('plan finished'), 30_000);
  const finished = agent.lines().filter((line) => line.msg === 'step finished');
  expect(finished.map((line) => [line.step, line.status])).toEqual(expect.arrayContaining([['files', 'ok'], ['archive', 'ok']]));
  agent.child.kill('SIGTERM');
  expect(await agent.exited).toBe(0);

  for (const from of ['files', 'archive']) {
    const to = join(work, `restored-${from}`);
    const result = await runCli(['restore', '--from', `file://${store}/${from}/`, '--to', to], {}, 30_000, cli);
    expect(result.code).toBe(0);
    expect(readFileSync(join(to, 'data/ckpt/model.pt')).equals(model)).toBe(true);
    expect(readFileSync(join(to, 'data/train.log'), 'utf8')).toBe('step 1\n');
  }
}, 60_000);
