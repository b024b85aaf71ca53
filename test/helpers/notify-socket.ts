import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** One datagram systemd would have received on NOTIFY_SOCKET. */
export interface NotifyMessage {
  /** Sender pid from SCM_CREDENTIALS. */
  pid: number | null;
  fields: Record<string, string>;
}

export interface NotifySocket {
  /** The socket path to put in NOTIFY_SOCKET. */
  readonly path: string;
  /** Every message so far, in arrival order. */
  readonly messages: NotifyMessage[];
  /** Resolves with the first message (from `from` on) that `match` accepts; rejects after `timeoutMs`. */
  waitFor(match: (message: NotifyMessage) => boolean, timeoutMs?: number, from?: number): Promise<NotifyMessage>;
  close(): Promise<void>;
}

const LISTENER = join(dirname(fileURLToPath(import.meta.url)), 'notify-listener.py');

/**
 * A real unix datagram listener standing in for systemd (Node has no unix datagram
 * sockets, so python3 does the listening). It closes descriptors it receives, as systemd
 * does, which releases systemd-notify's barrier wait at once.
 */
export async function startNotifySocket(): Promise<NotifySocket> {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-notify-'));
  const path = join(dir, 'notify.sock');
  const child: ChildProcess = spawn('python3', [LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: NotifyMessage[] = [];
  const waiters = new Set<() => void>();
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`notify listener exited with code ${code}`)));
    lines.on('line', (line) => {
      const parsed = JSON.parse(line) as NotifyMessage | { listening: string };
      if ('listening' in parsed) return resolve();
      messages.push(parsed);
      for (const wake of waiters) wake();
    });
  });

  return {
    path,
    messages,
    waitFor(match, timeoutMs = 10_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.slice(from).find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching notify message within ${timeoutMs} ms; got ${JSON.stringify(messages.map((message) => message.fields))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
