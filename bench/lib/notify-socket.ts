import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** One datagram systemd would have received on NOTIFY_SOCKET. */
export interface NotifyMessage {
  /** Sender pid from SCM_CREDENTIALS. */
  pid: number | null;
  fields: Record<string, string>;
  /** performance.now() when the message reached this process. */
  at: number;
}

export interface NotifySocket {
  /** The socket path to put in NOTIFY_SOCKET. */
  readonly path: string;
  /** Every message so far, in arrival order. */
  readonly messages: NotifyMessage[];
  /** Resolves with the first message `match` accepts; rejects after `timeoutMs`. */
  waitFor(match: (message: NotifyMessage) => boolean, timeoutMs?: number): Promise<NotifyMessage>;
  close(): Promise<void>;
}

/**
 * The listener, run with `python3 -c` (Node has no unix datagram sockets). It prints
 * {"listening": PATH} once bound, then {"pid": SENDER_PID, "fields": {...}} per message.
 * It closes the descriptors a message carries at once, as systemd does: systemd-notify
 * (systemd >= 246) sends a barrier fd and waits until the listener closes it, up to 5 s.
 * Kept inline so the compiled benchmark (dist/bench) needs no file beside it.
 */
const LISTENER = String.raw`
import array
import json
import os
import socket
import sys

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(path)
print(json.dumps({"listening": path}), flush=True)

fd_size = array.array("i").itemsize
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(16 * fd_size) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fd_size])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(payload[0:4], sys.byteorder)
    fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    # The barrier is systemd-notify's handshake, not a state change: systemd never shows it.
    if fields == {"BARRIER": "1"}:
        continue
    print(json.dumps({"pid": pid, "fields": fields}), flush=True)
`;

/**
 * A real unix datagram listener standing in for systemd's NOTIFY_SOCKET, for tests and
 * benchmarks. `at` is when this process read each message (performance.now()).
 */
export async function startNotifySocket(): Promise<NotifySocket> {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-notify-'));
  const path = join(dir, 'notify.sock');
  const child: ChildProcess = spawn('python3', ['-c', LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: NotifyMessage[] = [];
  const waiters = new Set<() => void>();
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`notify listener exited with code ${code}`)));
    lines.on('line', (line) => {
      const at = performance.now();
      const parsed = JSON.parse(line) as Omit<NotifyMessage, 'at'> | { listening: string };
      if ('listening' in parsed) return resolve();
      messages.push({ ...parsed, at });
      for (const wake of waiters) wake();
    });
  });

  return {
    path,
    messages,
    waitFor(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
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
