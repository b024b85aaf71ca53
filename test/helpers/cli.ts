import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI; `npm test` builds dist before jest runs. */
export const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `preemptd <args>` to completion with the pinned Node; `cli` is another build's entry (the bundle). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000, cli = CLI): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`preemptd ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A running `preemptd run` whose JSON log lines are collected as they arrive. */
export interface AgentProcess {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  output: () => string;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

export function startAgent(args: string[], env: NodeJS.ProcessEnv = {}, cli = CLI): AgentProcess {
  const child = spawn(process.execPath, [cli, 'run', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const parsed: Array<Record<string, unknown>> = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk;
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const line of complete) {
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // Non-JSON output (none expected) stays in output() for assertions.
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines: () => parsed,
    output: () => output,
    exited,
    async waitForLog(predicate, timeoutMs = 15_000) {
      const started = Date.now();
      for (;;) {
        const found = parsed.find(predicate);
        if (found) return found;
        if (Date.now() - started > timeoutMs || child.exitCode !== null) {
          throw new Error(`log line not seen within ${timeoutMs} ms; output so far:\n${output}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
  };
}
