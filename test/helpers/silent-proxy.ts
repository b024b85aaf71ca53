import { createServer, request, type IncomingMessage } from 'node:http';

export interface SilentProxy {
  /** http://127.0.0.1:PORT, plus the target's path: use it where the target's URL would go. */
  url: string;
  /** The next request `picks` chooses is accepted, its body read, and never answered. */
  holdNext(picks: (request: IncomingMessage) => boolean): void;
  /** `METHOD path` of each request held so far. */
  held: string[];
  close(): Promise<void>;
}

/**
 * A loopback proxy in front of `target` (an http:// URL: a local server, or a host nock
 * answers in this process) that passes every request through, except the ones a test tells it
 * to hold: a server that accepts a request and then goes silent. `Location` headers naming the
 * target (a GCS resumable session) are rewritten to the proxy, so later requests pass it too.
 */
export async function startSilentProxy(target: string): Promise<SilentProxy> {
  const origin = new URL(target).origin;
  const holds: Array<(request: IncomingMessage) => boolean> = [];
  const held: string[] = [];
  let proxyOrigin = '';
  const server = createServer((incoming, outgoing) => {
    const hold = holds.findIndex((picks) => picks(incoming));
    if (hold >= 0) {
      holds.splice(hold, 1);
      held.push(`${incoming.method} ${incoming.url!.split('?')[0]}`);
      incoming.resume();
      return;
    }
    const forwarded = request(new URL(incoming.url!, origin), { method: incoming.method, headers: { ...incoming.headers, host: new URL(origin).host } }, (answer) => {
      const headers = { ...answer.headers };
      if (typeof headers.location === 'string') headers.location = headers.location.replace(origin, proxyOrigin);
      outgoing.writeHead(answer.statusCode!, headers);
      answer.pipe(outgoing);
    });
    forwarded.on('error', (error) => outgoing.destroy(error));
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxyOrigin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url: `${proxyOrigin}${new URL(target).pathname}`.replace(/\/$/, ''),
    holdNext: (picks) => void holds.push(picks),
    held,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
