import { readdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { showValue } from '../../lib/format.js';
import type { Pattern } from '../../lib/pattern.js';
import { CommandNotFound, PreemptdError } from '../../lib/errors.js';
import { readRegularFile } from '../../lib/read-regular-file.js';
import { runCommand } from '../../lib/run-command.js';
import { listProcesses, selfAndAncestors } from './proc.js';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** A pid and a newline, with room for whitespace; anything longer is not a pidfile. */
const PIDFILE_MAX_BYTES = 4096;
/** cgroup.procs of a cgroup with a few hundred thousand processes. */
const CGROUP_PROCS_MAX_BYTES = 4 * 1024 * 1024;

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The pid a pidfile names, or undefined when the file does not exist (the service is not
 * running). Anything but a single number above 1 is refused: signalling 0 or 1 would hit
 * our own process group or init. Only a regular file is read (see readRegularFile).
 */
export async function readPidfile(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readRegularFile(path, PIDFILE_MAX_BYTES);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw new PreemptdError('ERR_SIGNAL_TARGET', `cannot read pidfile ${path}: ${(error as Error).message}`);
  }
  const content = text.trim();
  const pid = /^\d+$/.test(content) ? Number(content) : NaN;
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    throw new PreemptdError('ERR_SIGNAL_TARGET', `pidfile ${path} holds ${showValue(content)}: expected one process id greater than 1`);
  }
  return pid;
}

/** Processes whose command line (argv joined with spaces) matches. */
export async function matchProcesses(pattern: Pattern): Promise<number[]> {
  const processes = await listProcesses();
  return processes.filter((info) => pattern.test(info.command)).map((info) => info.pid);
}

export function cgroupDirectory(path: string): string {
  return isAbsolute(path) ? path : join(CGROUP_ROOT, path);
}

/** Every pid in a cgroup and its child cgroups; none when the cgroup does not exist. */
export async function cgroupProcesses(path: string): Promise<number[]> {
  const directory = cgroupDirectory(path);
  let procs: string;
  let entries;
  try {
    [procs, entries] = await Promise.all([
      readRegularFile(join(directory, 'cgroup.procs'), CGROUP_PROCS_MAX_BYTES),
      readdir(directory, { withFileTypes: true }),
    ]);
  } catch (error) {
    if (isMissing(error)) return [];
    throw new PreemptdError('ERR_SIGNAL_TARGET', `cannot read cgroup ${directory}: ${(error as Error).message}`);
  }
  const own = procs.split('\n').filter(Boolean).map(Number);
  const children = await Promise.all(
    entries.filter((entry) => entry.isDirectory()).map((entry) => cgroupProcesses(join(directory, entry.name))),
  );
  return [...own, ...children.flat()];
}

/** Pids of GPU compute processes, or `tool-missing` when nvidia-smi is not installed. */
export async function gpuProcesses(options: { signal: AbortSignal; timeoutMs: number }): Promise<number[] | 'tool-missing'> {
  let result;
  try {
    result = await runCommand('nvidia-smi', ['--query-compute-apps=pid', '--format=csv,noheader'], options);
  } catch (error) {
    if (error instanceof CommandNotFound) return 'tool-missing';
    throw error;
  }
  if (result.exitCode !== 0) {
    throw new PreemptdError('ERR_COMMAND', `nvidia-smi exited with code ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

/**
 * Refuses a pid named outright (`pid`, `pidfile`) that is preemptd itself or one of its
 * ancestors: a pidfile anyone can write must not make the agent kill itself or its shell.
 */
export async function refuseSelfAndAncestors(pid: number, pidfile?: string): Promise<void> {
  const protectedPids = await selfAndAncestors();
  if (!protectedPids.has(pid)) return;
  const who = pid === process.pid ? 'preemptd itself' : 'an ancestor of preemptd (its parent, or a parent of that)';
  const subject = pidfile === undefined ? `pid ${pid} is` : `pidfile ${pidfile} names pid ${pid}, which is`;
  throw new PreemptdError('ERR_SIGNAL_TARGET', `${subject} ${who}: refusing to signal it`);
}

/**
 * Drops pid 0/1, duplicates, preemptd itself and its ancestors from a discovered set: in a
 * pod sharing its process namespace the workload is not pid 1, and the runtime or shell
 * that started us may match a loose pattern or share the cgroup.
 */
export async function safeTargets(pids: number[]): Promise<number[]> {
  const protectedPids = await selfAndAncestors();
  return [...new Set(pids)].filter((pid) => pid > 1 && !protectedPids.has(pid));
}
