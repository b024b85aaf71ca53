import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../helpers/config.js';
import { CONFIG_DEFAULTS } from '../../src/config/schema.js';
import { startSimulator } from '../../src/simulator/metadata-server.js';
import { freePort } from '../helpers/free-port.js';

const execFileAsync = promisify(execFile);
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const DEFAULT_PORT = Number(CONFIG_DEFAULTS.server.listen.split(':').at(-1));

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `preemptd-${prefix}-`));
}

// ---------------------------------------------------------------------------------------
// Dockerfile: no Docker engine here, so the instructions are read and the bundle install
// it copies (packaging/install-bundle.sh, as the .deb) is made and run for real.

interface Instruction {
  keyword: string;
  args: string;
}

function dockerfile(): Instruction[] {
  const text = readFileSync('packaging/Dockerfile', 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
}

/** The repository paths the Dockerfile copies (every COPY without --from, less its destination). */
function copiedFromRepository(): string[] {
  return dockerfile()
    .filter((entry) => entry.keyword === 'COPY' && !entry.args.startsWith('--from'))
    .flatMap((entry) => entry.args.split(/\s+/).slice(0, -1));
}

/** The runtime stage: everything after the last FROM. */
function runtimeStage(): Instruction[] {
  const all = dockerfile();
  const lastFrom = all.map((instruction) => instruction.keyword).lastIndexOf('FROM');
  return all.slice(lastFrom);
}

function jsonArgs(keyword: string, from = runtimeStage()): string[] {
  const instruction = from.find((entry) => entry.keyword === keyword);
  if (!instruction) throw new Error(`no ${keyword} in packaging/Dockerfile`);
  return JSON.parse(instruction.args.replace(/^.*?CMD\s+/, '')) as string[];
}

describe('packaging/Dockerfile', () => {
  test('builds in one stage and runs on a Node.js 24 image in another', () => {
    const instructions = dockerfile();
    const nodeImage = instructions.find((entry) => entry.keyword === 'ARG' && entry.args.startsWith('NODE_IMAGE='))!.args.split('=')[1];
    expect(nodeImage).toMatch(/^node:24[-.]/);
    const froms = instructions.filter((entry) => entry.keyword === 'FROM').map((entry) => entry.args);
    expect(froms).toEqual(['${NODE_IMAGE} AS build', '${NODE_IMAGE}']);
    expect(runtimeStage().some((entry) => entry.keyword === 'COPY' && entry.args === '--from=build /opt/preemptd /opt/preemptd')).toBe(true);
    // The bundle, installed as the .deb installs it, is what the runtime stage copies.
    expect(instructions.some((entry) => entry.keyword === 'RUN' && entry.args === 'node scripts/bundle.ts && sh packaging/install-bundle.sh /opt/preemptd')).toBe(true);
  });

  test('runs as a numeric non-root user under tini, with a HEALTHCHECK on /healthz', () => {
    const user = runtimeStage().find((entry) => entry.keyword === 'USER')!.args;
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(jsonArgs('ENTRYPOINT')).toEqual(['tini', '-s', '--', 'node', '/opt/preemptd/lib/preemptd.mjs']);
    expect(jsonArgs('CMD')).toEqual(['run', '--config', '/etc/preemptd/config.yaml']);
    // `preemptd health` follows server.listen (the image sets PREEMPTD_SERVER__LISTEN), not a fixed port.
    expect(jsonArgs('HEALTHCHECK')).toEqual(['node', '/opt/preemptd/lib/preemptd.mjs', 'health']);
  });

  test('carries the OCI labels, its version that of package.json', () => {
    const labels = Object.fromEntries(
      runtimeStage()
        .filter((entry) => entry.keyword === 'LABEL')
        .flatMap((entry) => [...entry.args.matchAll(/([\w.-]+)="([^"]*)"/g)].map((match) => [match[1]!, match[2]!])),
    );
    const args = Object.fromEntries(runtimeStage().filter((entry) => entry.keyword === 'ARG').map((entry) => entry.args.split('=')));
    expect(Object.keys(labels).sort()).toEqual(
      ['base.name', 'description', 'licenses', 'revision', 'title', 'version'].map((name) => `org.opencontainers.image.${name}`),
    );
    expect(labels['org.opencontainers.image.title']).toBe('preemptd');
    expect(labels['org.opencontainers.image.version']).toBe('${VERSION}');
    expect(args.VERSION).toBe(VERSION);
    expect(labels['org.opencontainers.image.licenses']).toBe((JSON.parse(readFileSync('package.json', 'utf8')) as { license: string }).license);
    // A build ARG declared before the first FROM is visible in a stage only once declared there again.
    expect(Object.keys(args)).toContain('NODE_IMAGE');
  });

  test('every file it copies from the repository exists and passes its .dockerignore', () => {
    const allowed = readFileSync('packaging/Dockerfile.dockerignore', 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    const copied = copiedFromRepository();
    expect(copied.length).toBeGreaterThan(0);
    for (const path of copied) {
      expect(existsSync(path)).toBe(true);
      expect(allowed.some((entry) => path === entry || path.startsWith(`${entry}/`))).toBe(true);
    }
  });

  test('its build stage copies every file of ours that the bundling script imports', () => {
    const copied = copiedFromRepository();
    const imported = [...readFileSync('scripts/bundle.ts', 'utf8').matchAll(/from '\.\/([^']+)'/g)].map((match) => `scripts/${match[1]}`);
    expect(imported.length).toBeGreaterThan(0);
    for (const path of ['scripts/bundle.ts', ...imported]) expect(copied).toContain(path);
  });
});

describe('the bundle install the image and the .deb carry', () => {
  let dir: string;
  beforeAll(async () => {
    if (!existsSync('dist/bundle/preemptd.mjs')) throw new Error('dist/bundle is missing: build first (npm run build; npm test does)');
    dir = tempDir('production');
    await execFileAsync('sh', ['packaging/install-bundle.sh', dir], { maxBuffer: 16 * 1024 * 1024 });
  }, 240_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('holds the bundle and only the packages it leaves external, nothing for development', async () => {
    expect(existsSync(join(dir, 'lib/preemptd.mjs'))).toBe(true);
    const { stdout } = await execFileAsync('find', [join(dir, 'node_modules'), '-name', 'package.json', '-maxdepth', '3']);
    const packages = stdout.trim().split('\n').map((path) => path.slice(join(dir, 'node_modules').length + 1, -'/package.json'.length)).sort();
    expect(packages.filter((name) => !name.startsWith('@node-rs/crc32-'))).toEqual(['@node-rs/crc32', 'systemd-notify']);
  });

  test('its entrypoint runs on the pinned Node.js 24', async () => {
    const { stdout } = await execFileAsync(process.execPath, ['lib/preemptd.mjs', '--version'], { cwd: dir });
    expect(stdout.trim()).toBe(VERSION);
    expect(process.versions.node.split('.')[0]).toBe('24');
  });

  test('the image\'s compile-cache warm-up runs on it and fills the cache', async () => {
    const build = dockerfile().slice(0, dockerfile().map((entry) => entry.keyword).lastIndexOf('FROM'));
    const cacheDir = build.find((entry) => entry.keyword === 'ENV' && entry.args.startsWith('NODE_COMPILE_CACHE='))!.args.split('=')[1]!;
    const warmUp = build.find((entry) => entry.keyword === 'RUN' && entry.args.startsWith('node /opt/preemptd/'))!;
    const here = (text: string) => text.replaceAll('/opt/preemptd', dir);
    const [, ...args] = here(warmUp.args).split(' ');
    await execFileAsync(process.execPath, args, { env: { ...process.env, NODE_COMPILE_CACHE: here(cacheDir) } });
    const { stdout } = await execFileAsync('find', [here(cacheDir), '-type', 'f']);
    // The entry and the CLI's chunks, at least.
    expect(stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);
  });

  test('the agent runs from it with the default config, and the image\'s HEALTHCHECK command passes', async () => {
    const simulator = await startSimulator({ provider: 'aws' });
    cleanups.push(() => simulator.close());
    const port = await freePort();
    const stateDir = tempDir('production-state');
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const agent = spawn(
      process.execPath,
      ['lib/preemptd.mjs', 'run', '--config', join(process.cwd(), 'packaging/config.yaml'), '--provider', 'aws', '--metadata-url', simulator.url, '--state-dir', stateDir],
      { cwd: dir, env: { ...process.env, PREEMPTD_SERVER__LISTEN: `127.0.0.1:${port}` }, stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => agent.once('exit', resolve));
    cleanups.push(async () => {
      if (agent.exitCode === null) agent.kill('SIGKILL');
      await exited;
    });

    // The HEALTHCHECK command as the image runs it, from this install, with the image's
    // wildcard listen address on this test's port: it asks loopback, where the agent listens.
    const [command, ...args] = jsonArgs('HEALTHCHECK').map((arg) => arg.replace('/opt/preemptd', dir));
    expect(command).toBe('node');
    const listen = runtimeStage().find((entry) => entry.keyword === 'ENV' && entry.args.includes('PREEMPTD_SERVER__LISTEN='))!.args;
    const imageListen = /PREEMPTD_SERVER__LISTEN=(\S+)/.exec(listen)![1]!;
    expect(imageListen).toBe(`0.0.0.0:${DEFAULT_PORT}`);
    const env = { ...process.env, PREEMPTD_CONFIG: join(process.cwd(), 'packaging/config.yaml'), PREEMPTD_SERVER__LISTEN: imageListen.replace(`:${DEFAULT_PORT}`, `:${port}`) };
    const healthcheck = () => execFileAsync(process.execPath, args, { env }).then(() => 0, (error: { code: number }) => error.code);
    const until = Date.now() + 15_000;
    let code = await healthcheck();
    while (code !== 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      code = await healthcheck();
    }
    expect(code).toBe(0);

    agent.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Stopped: the same command now fails, so a dead agent is reported unhealthy.
    expect(await healthcheck()).not.toBe(0);
  });
});

// ---------------------------------------------------------------------------------------
// Kubernetes examples: parsed, and the fields that make them work checked.

/** Manifests are read as plain JSON: the checks below name the fields they need. */
type Manifest = Record<string, any>;

function manifests(file: string): Manifest[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const document of documents) expect(document.errors).toEqual([]);
  return documents.map((document) => document.toJSON() as Manifest);
}

/** A Kubernetes plan must load (references resolved from `env`), and be the ConfigMap its pod mounts. */
async function checkKustomizedConfig(folder: string, pod: Manifest): Promise<void> {
  const [kustomization] = manifests(join(folder, 'kustomization.yaml'));
  const generator = kustomization!.configMapGenerator.find((entry: Manifest) => entry.files.includes('config.yaml'));
  expect(pod.volumes.find((entry: Manifest) => entry.name === 'config').configMap.name).toBe(generator.name);
  const config = await loadConfig({ file: join(folder, 'config.yaml'), env: { SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/x' } });
  expect(config.steps.length).toBeGreaterThan(0);
}

function probePort(container: Manifest, probe: string): number {
  const port = container[probe].httpGet.port;
  return typeof port === 'number' ? port : container.ports.find((entry: Manifest) => entry.name === port).containerPort;
}

describe('packaging/kubernetes/overlays/sidecar', () => {
  const [job] = manifests('packaging/kubernetes/overlays/sidecar/job.yaml');
  const pod = job!.spec.template.spec;
  const sidecar = pod.initContainers[0];

  test('runs preemptd as a native sidecar sharing the trainer\'s process namespace', () => {
    expect(job!.kind).toBe('Job');
    expect(sidecar.restartPolicy).toBe('Always');
    expect(pod.shareProcessNamespace).toBe(true);
    // Same user for both containers: signals need no capability.
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(sidecar.securityContext.capabilities.drop).toEqual(['ALL']);
  });

  test('shares the checkpoint emptyDir with the trainer, read-only for the agent', () => {
    const volume = pod.volumes.find((entry: Manifest) => entry.name === 'checkpoints');
    expect(volume.emptyDir).toBeDefined();
    const trainerMount = pod.containers[0].volumeMounts.find((mount: Manifest) => mount.name === 'checkpoints');
    const sidecarMount = sidecar.volumeMounts.find((mount: Manifest) => mount.name === 'checkpoints');
    expect(sidecarMount).toMatchObject({ mountPath: trainerMount.mountPath, readOnly: true });
  });

  test('probes /readyz (readiness) and /healthz (startup, liveness) on the port the agent listens on', () => {
    const listen = sidecar.env.find((entry: Manifest) => entry.name === 'PREEMPTD_SERVER__LISTEN').value;
    expect(listen).toBe(`0.0.0.0:${DEFAULT_PORT}`);
    expect(sidecar.readinessProbe.httpGet.path).toBe('/readyz');
    expect(sidecar.startupProbe.httpGet.path).toBe('/healthz');
    expect(sidecar.livenessProbe.httpGet.path).toBe('/healthz');
    for (const probe of ['readinessProbe', 'startupProbe', 'livenessProbe']) expect(probePort(sidecar, probe)).toBe(DEFAULT_PORT);
  });

  test('sizes the grace period to the notice window and explains the IMDSv2 hop limit', () => {
    // AWS takes the node 120 s after the notice: a longer grace period is never used.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(30);
    expect(pod.terminationGracePeriodSeconds).toBeLessThanOrEqual(120);
    const text = readFileSync('packaging/kubernetes/overlays/sidecar/job.yaml', 'utf8');
    expect(text).toContain('--http-put-response-hop-limit 2');
    expect(text).toContain('hostNetwork');
  });

  test('mounts its plan, a config that loads', async () => {
    await checkKustomizedConfig('packaging/kubernetes/overlays/sidecar', pod);
  });
});

describe('packaging/kubernetes/base', () => {
  const [daemonSet] = manifests('packaging/kubernetes/base/daemonset.yaml');
  const pod = daemonSet!.spec.template.spec;
  const container = pod.containers[0];

  test('runs on the host network and PID namespace with CAP_KILL as its only capability', () => {
    expect(daemonSet!.kind).toBe('DaemonSet');
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBe(true);
    expect(container.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['KILL'] });
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
  });

  test('probes /readyz and /healthz on the port the agent listens on, and keeps its journal on the node', () => {
    expect(container.env.find((entry: Manifest) => entry.name === 'PREEMPTD_SERVER__LISTEN').value).toBe(`$(HOST_IP):${DEFAULT_PORT}`);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(probePort(container, 'readinessProbe')).toBe(DEFAULT_PORT);
    expect(pod.volumes.find((entry: Manifest) => entry.name === 'state').hostPath.path).toBe('/var/lib/preemptd');
  });

  test('mounts its plan, a config that loads', async () => {
    await checkKustomizedConfig('packaging/kubernetes/base', pod);
  });
});
