import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURE_BIN = fileURLToPath(new URL('../fixtures/bin', import.meta.url));
const WORKLOAD = `${FIXTURE_BIN}/workload.mjs`;

export interface Workload {
  child: ChildProcess;
  pid: number;
  /** Signals received so far, in order. */
  received(): string[];
}

/** Tracks every workload a test started so afterEach can kill the stragglers. */
export class Workloads {
  private readonly started: ChildProcess[] = [];

  /** Starts workload.mjs and resolves once its signal handlers are installed. */
  async start(record: string, extraArgs: string[] = []): Promise<Workload> {
    const child = spawn(process.execPath, [WORKLOAD, record, ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.started.push(child);
    const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
    if (!chunk.toString().includes('ready')) throw new Error(`workload did not start: ${chunk}`);
    return {
      child,
      pid: child.pid!,
      received: () => {
        try {
          return readFileSync(record, 'utf8').split('\n').filter(Boolean);
        } catch {
          return [];
        }
      },
    };
  }

  killAll(): void {
    for (const child of this.started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    this.started.length = 0;
  }
}
