import { close, open, read, readdir, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

/** A process as /proc shows it: its id and its argv joined with spaces. */
export interface ProcessInfo {
  pid: number;
  command: string;
}

const PROC = '/proc';
const openFile = promisify(open);
const readFrom = promisify(read);
const closeFile = promisify(close);
const listDirectory = promisify(readdir);
const CHUNK = 4096;

/**
 * Reads a /proc file off the event loop with open/read/close only (fs.promises.readFile
 * also stats and re-reads: twice the thread-pool trips, which shows at 200+ processes).
 */
async function readProcFile(path: string): Promise<string> {
  const fd = await openFile(path, 'r');
  try {
    const chunks: Buffer[] = [];
    for (let position = 0; ; ) {
      const buffer = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await readFrom(fd, buffer, 0, CHUNK, position);
      chunks.push(buffer.subarray(0, bytesRead));
      position += bytesRead;
      if (bytesRead < CHUNK) return Buffer.concat(chunks).toString('utf8');
    }
  } finally {
    await closeFile(fd);
  }
}

/**
 * Every process with a command line (kernel threads have none). Command lines are read
 * asynchronously on purpose: reading /proc/<pid>/cmdline takes the target's memory lock and
 * can block on a process stuck in the kernel; the daemon must not stall with it.
 */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const entries = await listDirectory(PROC);
  const pids = entries.filter((name) => /^\d+$/.test(name)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid) => {
      const raw = await readProcFile(`${PROC}/${pid}/cmdline`).catch(() => '');
      const command = raw.replace(/\0+$/, '').replaceAll('\0', ' ');
      return command ? { pid, command } : undefined;
    }),
  );
  return found.filter((info): info is ProcessInfo => info !== undefined);
}

/**
 * The fields of /proc/<pid>/stat after the command name (which may hold spaces and parens).
 * Read synchronously: unlike cmdline, stat does not wait on the target's memory lock, and
 * polling 200 exiting processes through the thread pool would cost tens of milliseconds.
 */
function statFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`${PROC}/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** `pid` and every ancestor up to init: processes preemptd must never signal by a broad match. */
export async function selfAndAncestors(pid = process.pid): Promise<Set<number>> {
  const lineage = new Set<number>();
  let current = pid;
  while (current > 0 && !lineage.has(current)) {
    lineage.add(current);
    const fields = statFields(current);
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
  const fields = statFields(pid);
  return fields !== undefined && fields[0] !== 'Z';
}
