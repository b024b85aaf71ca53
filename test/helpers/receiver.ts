import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got, exactly as it arrived. */
export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Epoch ms when the body was complete. */
  at: number;
}

/** How the receiver answers one request. */
export interface ReceiverReply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (a slow receiver). */
  delayMs?: number;
}

export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Every request so far, in arrival order. */
  readonly requests: ReceivedRequest[];
  /** `origin` + path, e.g. `receiver.url('/hook')`. */
  url(path?: string): string;
  /** Replace the replies still to come. */
  reply(...replies: ReceiverReply[]): void;
  /** Resolves once `count` requests have arrived; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/**
 * A real loopback HTTP receiver for webhook-like tests. Replies are used in order; once
 * they run out the last one repeats (200 with an empty body when none were given).
 */
export async function startReceiver(...replies: ReceiverReply[]): Promise<Receiver> {
  let queue = [...replies];
  let last: ReceiverReply = {};
  const requests: ReceivedRequest[] = [];
  const waiters: Array<() => void> = [];
  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      requests.push({
        method: incoming.method ?? '',
        path: incoming.url ?? '',
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      waiters.splice(0).forEach((wake) => wake());
      const reply = queue.shift() ?? last;
      last = reply;
      const answer = () => {
        if (outgoing.destroyed) return;
        outgoing.writeHead(reply.status ?? 200, reply.headers);
        outgoing.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs).unref();
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    requests,
    url: (path = '/') => `${origin}${path}`,
    reply: (...next) => {
      queue = [...next];
    },
    waitFor(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver got ${requests.length} of ${count} requests in ${timeoutMs}ms`)), timeoutMs);
        const check = () => {
          if (requests.length >= count) {
            clearTimeout(timer);
            resolve(requests.slice(0, count));
          } else waiters.push(check);
        };
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
