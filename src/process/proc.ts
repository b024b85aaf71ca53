import { readdir, readFile } from 'node:fs/promises';

/** A process as /proc shows it: its id and its argv joined with spaces. */
export interface ProcessInfo {
  pid: number;
  command: string;
}

const PROC = '/proc';

/**
 * Every process with a command line (kernel threads have none). Reads are asynchronous on
 * purpose: reading /proc/<pid>/cmdline can block on a process stuck in the kernel, and the
 * daemon must not stall with it.
 */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const entries = await readdir(PROC);
  const pids = entries.filter((name) => /^\d+$/.test(name)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid) => {
      const raw = await readFile(`${PROC}/${pid}/cmdline`, 'utf8').catch(() => '');
      const command = raw.replace(/\0+$/, '').replaceAll('\0', ' ');
      return command ? { pid, command } : undefined;
    }),
  );
  return found.filter((info): info is ProcessInfo => info !== undefined);
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parens). */
async function statFields(pid: number): Promise<string[] | undefined> {
  const stat = await readFile(`${PROC}/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** `pid` and every ancestor up to init: processes preemptd must never signal by a broad match. */
export async function selfAndAncestors(pid = process.pid): Promise<Set<number>> {
  const lineage = new Set<number>();
  let current = pid;
  while (current > 0 && !lineage.has(current)) {
    lineage.add(current);
    const fields = await statFields(current);
    current = fields ? Number(fields[1]) : 0;
  }
  return lineage;
}

/**
 * True while the process exists and is not a zombie. A zombie has exited already; only its
 * parent has not collected it yet, and it would otherwise look alive to kill(pid, 0).
 */
export async function isRunning(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const fields = await statFields(pid);
  return fields !== undefined && fields[0] !== 'Z';
}
