import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Daemon } from '../../src/daemon/daemon.js';
import { MetadataClient } from '../../src/providers/metadata/client.js';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../../src/simulator/metadata-server.js';
import { startAgent, type AgentProcess } from './cli.js';
import { startReceiver, type Receiver, type ReceiverReply } from './receiver.js';
import { Workloads } from './workload.js';

export type Cleanup = () => Promise<unknown> | unknown;

/**
 * What the tests of one file (or one describe block) start and must close. Create it at that
 * level: it registers an afterEach that kills the test's workloads, then undoes everything
 * deferred during the test, newest first, so jest exits cleanly.
 */
export class TestResources {
  readonly workloads = new Workloads();
  private readonly cleanups: Cleanup[] = [];

  /** `prefix` names the temp dirs, so a leftover one tells which test file made it. */
  constructor(private readonly prefix = 'preemptd-test-') {
    afterEach(() => this.cleanUp());
  }

  /** Runs `cleanup` after the current test, before anything deferred earlier. */
  defer(cleanup: Cleanup): void {
    this.cleanups.push(cleanup);
  }

  async cleanUp(): Promise<void> {
    this.workloads.killAll();
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup();
  }

  /** A fresh directory, removed after the test. */
  tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), this.prefix));
    this.defer(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** Starts `server` on a free loopback port and closes it, open connections too, after the test. */
  async listen(server: Server): Promise<{ base: string; port: number }> {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.defer(() => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    const { port } = server.address() as AddressInfo;
    return { base: `http://127.0.0.1:${port}`, port };
  }

  async simulator(options: SimulatorOptions): Promise<RunningSimulator> {
    const running = await startSimulator(options);
    this.defer(() => running.close());
    return running;
  }

  /** A simulator and a metadata client pointed at it. */
  async simulatorWithClient(options: SimulatorOptions): Promise<{ simulator: RunningSimulator; client: MetadataClient }> {
    const simulator = await this.simulator(options);
    const client = new MetadataClient(simulator.url);
    this.defer(() => client.close());
    return { simulator, client };
  }

  async receiver(...replies: ReceiverReply[]): Promise<Receiver> {
    const running = await startReceiver(...replies);
    this.defer(() => running.close());
    return running;
  }

  /** `preemptd run <args>` (of `cli`, the built CLI unless named); killed after the test if it is still running. */
  agent(args: string[], env: NodeJS.ProcessEnv = {}, cli?: string): AgentProcess {
    const running = startAgent(args, env, cli);
    this.defer(async () => {
      if (running.child.exitCode === null) {
        running.child.kill('SIGKILL');
        await running.exited;
      }
    });
    return running;
  }

  /** Runs `daemon`; it is stopped after the test (stopping twice is harmless). Resolves when run() does. */
  runDaemon(daemon: Daemon): Promise<void> {
    const running = daemon.run();
    this.defer(async () => {
      await daemon.stop();
      await running;
    });
    return running;
  }
}

/**
 * Writes `dir/config.yaml` and returns its path: an object as JSON (JSON is YAML), or lines
 * of YAML as they are.
 */
export function writeConfigFile(dir: string, config: Record<string, unknown> | string[]): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, Array.isArray(config) ? config.join('\n') : JSON.stringify(config));
  return file;
}

export interface AgentConfig {
  metadataUrl: string;
  /** YAML lines under `steps:`. */
  steps: string[];
  pollInterval?: string;
  /** Further top-level YAML lines. */
  settings?: string[];
}

/**
 * A config for `preemptd run` against a local AWS simulator, written to `dir/config.yaml`
 * with the state under `dir/state`.
 */
export function writeAgentConfig(dir: string, config: AgentConfig): string {
  return writeConfigFile(dir, [
    'provider: aws',
    `metadataUrl: ${config.metadataUrl}`,
    `pollInterval: ${config.pollInterval ?? '100ms'}`,
    // Tests run side by side: no agent here needs the local server's fixed port.
    'server: { enabled: false }',
    `stateDir: ${join(dir, 'state')}`,
    // Nor the host's /run/preemptd/notice.json, unless a test names its own.
    ...(config.settings?.some((line) => line.startsWith('noticeFile:')) ? [] : [`noticeFile: ${join(dir, 'notice.json')}`]),
    ...(config.settings ?? []),
    'steps:',
    ...config.steps,
  ]);
}
