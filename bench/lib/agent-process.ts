import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface AgentOptions {
  /** The simulator the agent polls. */
  metadataUrl: string;
  /** config.yaml lines beyond provider, metadataUrl and stateDir: poll interval, steps and so on. */
  settings: string[];
  /** Node options put before the CLI, such as `--import` of a probe. */
  nodeArgs?: string[];
  /** Arguments after `run --config FILE`. */
  runArgs?: string[];
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  /** The CLI to run: this tree's dist/src/cli.js unless another build's (bench/lib/builds.ts). */
  cli?: string;
}

/**
 * Writes `dir`/config.yaml for an AWS agent keeping its state in `dir`/state, and starts the
 * real `preemptd run` on it in a child process. The caller stops the child and removes `dir`.
 */
export function spawnAgent(dir: string, options: AgentOptions): ChildProcess {
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, ['provider: aws', `metadataUrl: ${options.metadataUrl}`, `stateDir: ${join(dir, 'state')}`, ...options.settings].join('\n'));
  return spawn(process.execPath, [...(options.nodeArgs ?? []), options.cli ?? CLI, 'run', '--config', configFile, ...(options.runArgs ?? [])], {
    stdio: options.stdio ?? 'inherit',
    env: options.env ?? process.env,
  });
}

/**
 * Sends SIGTERM to each child still running and waits until all have exited (SIGKILL after
 * 10 s), so the bench removes their folders only once nothing writes there any more.
 */
export async function stopChildren(...children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(kill);
    }),
  );
}
