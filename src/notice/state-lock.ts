import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bootId } from '../lib/boot-id.js';
import { stateDirError } from './state-dir-error.js';
import { PreemptdError } from '../lib/errors.js';

const LOCK_FILE = 'preemptd.lock';
/** State directories locked by this process: its own pid in a lock file is stale otherwise. */
const heldHere = new Set<string>();

interface Holder {
  pid: number;
  boot: string;
  since: string;
}

function parseHolder(text: string): Holder | undefined {
  try {
    const holder = JSON.parse(text) as Partial<Holder>;
    return Number.isInteger(holder.pid) && holder.pid! > 0 ? { pid: holder.pid!, boot: String(holder.boot ?? ''), since: String(holder.since ?? '') } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `holder` may still be running: same boot, and its pid is alive (ours only if held here). */
function alive(holder: Holder, dir: string): boolean {
  if (holder.boot !== bootId()) return false;
  if (holder.pid === process.pid) return heldHere.has(dir);
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock on a state directory, so that two agents never both run plans and write
 * one journal: `stateDir/preemptd.lock`, created atomically (O_EXCL) and holding the pid,
 * the boot and the time. A lock whose holder is gone (a dead pid, an earlier boot, a torn
 * file) is removed and taken again, still through O_EXCL, so of two agents taking over the
 * same stale lock only one wins.
 */
export class StateLock {
  private constructor(
    private readonly dir: string,
    private readonly text: string,
  ) {}

  get path(): string {
    return join(this.dir, LOCK_FILE);
  }

  /** Takes the lock; throws ERR_STATE_LOCKED naming the holder when another agent has it. */
  static async acquire(stateDir: string): Promise<StateLock> {
    const dir = resolve(stateDir);
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      throw stateDirError(dir, error, dir);
    });
    const path = join(dir, LOCK_FILE);
    const text = `${JSON.stringify({ pid: process.pid, boot: bootId(), since: new Date().toISOString() })}\n`;
    for (;;) {
      try {
        const file = await open(path, 'wx', 0o600);
        await file.writeFile(text);
        await file.close();
        heldHere.add(dir);
        return new StateLock(dir, text);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw stateDirError(dir, error, path);
      }
      const found = await readFile(path, 'utf8').catch(() => undefined);
      if (found === undefined) continue;
      const holder = parseHolder(found);
      if (holder && alive(holder, dir)) {
        throw new PreemptdError(
          'ERR_STATE_LOCKED',
          `state directory ${dir} is in use by another preemptd (pid ${holder.pid}, since ${holder.since}; lock ${path}): two agents on one stateDir would both run every plan and overwrite each other's journal. Stop that agent, or give this one another stateDir`,
        );
      }
      // Stale: removed only if it is still the very file read, then taken through O_EXCL again.
      if ((await readFile(path, 'utf8').catch(() => undefined)) === found) await unlink(path).catch(() => undefined);
    }
  }

  /** Removes the lock file if it is still this agent's. */
  async release(): Promise<void> {
    heldHere.delete(this.dir);
    if ((await readFile(this.path, 'utf8').catch(() => undefined)) === this.text) await unlink(this.path).catch(() => undefined);
  }
}
