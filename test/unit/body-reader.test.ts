import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { PreemptdError } from '../../src/lib/errors.js';
import { BodyReader, type BodyReaderOptions, type BodyRequest } from '../../src/stores/body-reader.js';
import { until } from '../helpers/until.js';

/** In every request: must never show up in an error message. */
const SECRET = 'AWS4-HMAC-SHA256 Credential=AKIDSECRET/20250101/us-east-1/s3/aws4_request, Signature=deadbeef';

/** One request head as the server read it, and where to answer it. */
interface Exchange {
  head: string;
  socket: Socket;
  /** 1 for the server's first connection. */
  connection: number;
  /** 0 for the first request on its connection. */
  index: number;
}

/** A loopback server that answers each request head with `answer`, counting connections. */
class Server {
  connections = 0;
  closed = 0;
  readonly heads: string[] = [];
  readonly sockets = new Set<Socket>();
  private readonly server: net.Server;

  constructor(answer: (exchange: Exchange) => unknown, secure?: { key: string; cert: string }) {
    const accept = (socket: Socket) => {
      const connection = ++this.connections;
      this.sockets.add(socket);
      // Each write its own segment, so that the pieces of `trickle` come to the client one by one.
      socket.setNoDelay(true);
      let index = 0;
      let pending = '';
      socket.on('error', () => {});
      socket.on('close', () => {
        this.closed++;
        this.sockets.delete(socket);
      });
      socket.on('data', (chunk: Buffer) => {
        pending += chunk.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
          const head = pending.slice(0, end + 4);
          pending = pending.slice(end + 4);
          this.heads.push(head);
          void answer({ head, socket, connection, index: index++ });
        }
      });
    };
    this.server = secure ? tls.createServer(secure, accept) : net.createServer(accept);
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const servers: Server[] = [];
const readers: BodyReader[] = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const reader of readers.splice(0)) reader.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(answer: (exchange: Exchange) => unknown, secure?: { key: string; cert: string }): Promise<{ server: Server; port: number }> {
  const server = new Server(answer, secure);
  servers.push(server);
  return { server, port: await server.start() };
}

/** keepAliveMs is long, so that a socket seen closed was closed for the reason a test looks at. */
function reader(options: Partial<BodyReaderOptions> = {}): BodyReader {
  const made = new BodyReader({ maxSockets: 4, idleMs: 200, keepAliveMs: 60_000, ...options });
  readers.push(made);
  return made;
}

function request(port: number, path: string, into: Buffer, overrides: Partial<BodyRequest> = {}): BodyRequest {
  return {
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    path,
    headers: { host: `127.0.0.1:${port}`, range: `bytes=0-${into.length - 1}`, authorization: SECRET },
    into,
    accept: [206],
    signal: new AbortController().signal,
    ...overrides,
  };
}

function responseHead(status: number, headers: [string, string | number][], version = '1.1'): string {
  return `HTTP/${version} ${status} Whatever\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
}

/** Writes `pieces` one by one, `pauseMs` apart. */
async function trickle(socket: Socket, pieces: (string | Buffer)[], pauseMs = 5): Promise<void> {
  for (const piece of pieces) {
    if (socket.destroyed) return;
    socket.write(piece);
    await sleep(pauseMs);
  }
}

/** `bytes` cut into pieces of `size`. */
function pieces(bytes: Buffer, size: number): Buffer[] {
  const cut: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) cut.push(bytes.subarray(at, at + size));
  return cut;
}

/** Answers every request with a 206 of `body` in one write. */
function answerWith(body: Buffer, headers: [string, string | number][] = []) {
  return ({ socket }: Exchange) => socket.write(Buffer.concat([Buffer.from(responseHead(206, [['Content-Length', body.length], ...headers])), body]));
}

/** The arguments of a spied socket method's calls on client sockets (a server's own have `server` set). */
function clientCalls(spy: { mock: { calls: unknown[][]; contexts: unknown[] } }): unknown[][] {
  return spy.mock.calls.filter((_, at) => !(spy.mock.contexts[at] as { server?: unknown }).server);
}

async function rejection(promise: Promise<unknown>): Promise<PreemptdError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PreemptdError);
  expect((error as PreemptdError).code).toBe('ERR_STORE');
  expect((error as PreemptdError).message).not.toContain('AKIDSECRET');
  return error as PreemptdError;
}

describe('BodyReader', () => {
  test('sends the GET head as given and reads a split head and a body in small pieces with pauses into `into`', async () => {
    const body = randomBytes(3000);
    const { server, port } = await serve(async ({ socket }) => {
      const head = responseHead(206, [['Content-Length', body.length], ['Content-Range', `bytes 0-2999/9000`]]);
      await trickle(socket, [head.slice(0, 7), head.slice(7, 30), head.slice(30), ...pieces(body, 97)]);
    });
    const into = Buffer.alloc(body.length);
    const answer = await reader().get(request(port, '/bucket/some%20key?x-id=GetObject', into));
    expect(answer).toEqual({ status: 206, read: true });
    expect(into.equals(body)).toBe(true);
    expect(server.heads).toEqual([`GET /bucket/some%20key?x-id=GetObject HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nrange: bytes=0-2999\r\nauthorization: ${SECRET}\r\n\r\n`]);
  });

  test('copies the body bytes that came with the head, and the rest lands in `into` as it arrives', async () => {
    const body = randomBytes(1000);
    let server: Socket | undefined;
    const { port } = await serve(({ socket }) => {
      server = socket;
      socket.write(Buffer.concat([Buffer.from(responseHead(206, [['Content-Length', body.length]])), body.subarray(0, 300)]));
    });
    const into = Buffer.alloc(body.length);
    let answered = false;
    const answer = reader()
      .get(request(port, '/o', into))
      .finally(() => (answered = true));
    await until(() => into.subarray(0, 300).equals(body.subarray(0, 300)));
    server!.write(body.subarray(300, 600));
    await until(() => into.subarray(300, 600).equals(body.subarray(300, 600)));
    expect(answered).toBe(false);
    server!.write(body.subarray(600));
    expect(await answer).toEqual({ status: 206, read: true });
    expect(into.equals(body)).toBe(true);
  });

  test('a body that came whole with its head, or an empty one, needs no further read', async () => {
    const body = randomBytes(50);
    const { server, port } = await serve(({ socket, index }) => {
      const bytes = index === 0 ? body : Buffer.alloc(0);
      socket.write(Buffer.concat([Buffer.from(responseHead(206, [['Content-Length', bytes.length]])), bytes]));
    });
    const read = reader({ maxSockets: 1 });
    const into = Buffer.alloc(50);
    expect(await read.get(request(port, '/whole', into))).toEqual({ status: 206, read: true });
    expect(into.equals(body)).toBe(true);
    expect(await read.get(request(port, '/empty', Buffer.alloc(0)))).toEqual({ status: 206, read: true });
    expect(server.connections).toBe(1);
  });

  test('a head over 16 KiB rejects and closes the socket; one just under 16 KiB is read', async () => {
    const { server, port } = await serve(({ socket, head }) => {
      const filler = head.includes('/big') ? 'x'.repeat(16 * 1024) : 'x'.repeat(15 * 1024);
      socket.write(responseHead(206, [['X-Filler', filler], ['Content-Length', 4]]) + 'abcd');
    });
    const read = reader();
    const into = Buffer.alloc(4);
    expect(await read.get(request(port, '/small', into))).toEqual({ status: 206, read: true });
    expect(into.toString()).toBe('abcd');
    const error = await rejection(read.get(request(port, '/big?X-Amz-Signature=querysecret', Buffer.alloc(4))));
    expect(error.message).toBe('GET /big: the answer has a head larger than 16 KiB');
    await until(() => server.closed === 1, 2000);
  });

  test('a malformed status line rejects and closes the socket', async () => {
    const { server, port } = await serve(({ socket }) => socket.write('HTTP/1.1 2x6 Partial\r\nContent-Length: 4\r\n\r\nabcd'));
    const error = await rejection(reader().get(request(port, '/bad', Buffer.alloc(4))));
    expect(error.message).toBe('GET /bad: the answer has a malformed status line');
    await until(() => server.closed === 1, 2000);
  });

  test('two differing Content-Length values reject without naming them; the same one twice is read', async () => {
    const { server, port } = await serve(({ socket, head }) => {
      const second = head.includes('/differ') ? 40000 : 4;
      socket.write(responseHead(206, [['Content-Length', 4], ['content-length', second]]) + 'abcd');
    });
    const read = reader();
    const into = Buffer.alloc(4);
    expect(await read.get(request(port, '/same', into))).toEqual({ status: 206, read: true });
    expect(into.toString()).toBe('abcd');
    const error = await rejection(read.get(request(port, '/differ', Buffer.alloc(4))));
    expect(error.message).toBe('GET /differ: the answer has two differing Content-Length values');
    expect(error.message).not.toContain('40000');
    await until(() => server.closed === 1, 2000);
  });

  test('another status, Content-Length or a Transfer-Encoding is read: false', async () => {
    const { port } = await serve(({ socket, head }) => {
      const path = head.split(' ')[1];
      if (path === '/status') socket.write(responseHead(404, [['Content-Length', 4]]) + 'nope');
      if (path === '/length') socket.write(responseHead(206, [['Content-Length', 3]]) + 'abc');
      if (path === '/chunked') socket.write(responseHead(206, [['Content-Length', 4], ['Transfer-Encoding', 'chunked']]) + '4\r\nabcd\r\n0\r\n\r\n');
      if (path === '/none') socket.write(responseHead(206, []));
    });
    const read = reader();
    expect(await read.get(request(port, '/status', Buffer.alloc(4)))).toEqual({ status: 404, read: false });
    expect(await read.get(request(port, '/length', Buffer.alloc(4)))).toEqual({ status: 206, read: false });
    expect(await read.get(request(port, '/chunked', Buffer.alloc(4)))).toEqual({ status: 206, read: false });
    expect(await read.get(request(port, '/none', Buffer.alloc(4)))).toEqual({ status: 206, read: false });
  });

  test('a refused body of up to 64 KiB is drained and the socket kept; a longer one, or none framed, closes it', async () => {
    const body = randomBytes(10);
    const { server, port } = await serve(async ({ socket, head }) => {
      const path = head.split(' ')[1]!;
      if (path === '/ok') return socket.write(Buffer.concat([Buffer.from(responseHead(206, [['Content-Length', 10]])), body]));
      const length = path === '/drain' ? 64 * 1024 : 64 * 1024 + 1;
      if (path === '/chunked') return socket.write(responseHead(500, [['Transfer-Encoding', 'chunked']]) + '0\r\n\r\n');
      await trickle(socket, [responseHead(500, [['Content-Length', length]]), ...pieces(Buffer.alloc(length, 'e'), 10_000)]);
    });
    const read = reader({ maxSockets: 1 });
    const into = Buffer.alloc(10);
    expect(await read.get(request(port, '/drain', into))).toEqual({ status: 500, read: false });
    expect(await read.get(request(port, '/ok', into))).toEqual({ status: 206, read: true });
    expect(into.equals(body)).toBe(true);
    expect(server.connections).toBe(1);
    expect(await read.get(request(port, '/long', into))).toEqual({ status: 500, read: false });
    await until(() => server.closed === 1, 2000);
    expect(await read.get(request(port, '/chunked', into))).toEqual({ status: 500, read: false });
    await until(() => server.closed === 2, 2000);
    into.fill(0);
    expect(await read.get(request(port, '/ok', into))).toEqual({ status: 206, read: true });
    expect(into.equals(body)).toBe(true);
    expect(server.connections).toBe(3);
  });

  test('keeps the connection between answers, each read into its own buffer', async () => {
    const bodies = [randomBytes(700), randomBytes(500), randomBytes(900)];
    const { server, port } = await serve(async ({ socket, index }) => {
      const body = bodies[index]!;
      // Each head must be read into the connection's own buffer, not after the last `into` (guarded by 0xaa bytes).
      await trickle(socket, [responseHead(206, [['Content-Length', body.length]]), ...pieces(body, 128)], 2);
    });
    const read = reader();
    const intos = bodies.map((body) => Buffer.alloc(body.length + 64, 0xaa).subarray(0, body.length));
    for (const [at, into] of intos.entries()) expect(await read.get(request(port, `/${at}`, into))).toEqual({ status: 206, read: true });
    for (const [at, into] of intos.entries()) {
      expect(into.equals(bodies[at]!)).toBe(true);
      expect(Buffer.from(into.buffer, into.byteOffset + into.length, 64).equals(Buffer.alloc(64, 0xaa))).toBe(true);
    }
    expect(server.connections).toBe(1);
  });

  test('Connection: close and HTTP/1.0 answers are not reused', async () => {
    const { server, port } = await serve(({ socket, head }) => {
      const close = head.includes('/close');
      socket.write(responseHead(206, [['Content-Length', 2], ...(close ? ([['Connection', 'keep-alive, Close']] as [string, string][]) : [])], close ? '1.1' : '1.0') + 'ok');
    });
    const read = reader({ maxSockets: 1 });
    for (const path of ['/close', '/close', '/old', '/old']) expect(await read.get(request(port, path, Buffer.alloc(2)))).toEqual({ status: 206, read: true });
    expect(server.connections).toBe(4);
    await until(() => server.closed === 4, 2000);
  });

  test('bytes past the answer, with it, right after it or later, close the socket; the next request gets a new one', async () => {
    const { server, port } = await serve(async ({ socket, head }) => {
      const answer = responseHead(206, [['Content-Length', 4]]);
      // What a next request would take for its answer, were it sent before these bytes were read.
      const extra = 'HTTP/1.1 206 OK\r\nContent-Length: 4\r\n\r\nxxxx';
      if (head.includes('/with')) return socket.write(answer + 'abcd' + extra);
      // The body's last read fills `into` exactly: the extra bytes come in the next read of the same turn.
      if (head.includes('/tail')) return trickle(socket, [answer, 'abcd' + extra], 20);
      socket.write(answer + 'abcd');
      if (head.includes('/later')) await trickle(socket, [...'extra'], 20);
    });
    const read = reader({ maxSockets: 1 });
    for (const path of ['/with', '/next', '/tail', '/next', '/later']) {
      const into = Buffer.alloc(4);
      expect(await read.get(request(port, path, into))).toEqual({ status: 206, read: true });
      expect(into.toString()).toBe('abcd');
    }
    expect(server.connections).toBe(3);
    await until(() => server.closed === 3, 2000);
    expect(await read.get(request(port, '/after', Buffer.alloc(4)))).toEqual({ status: 206, read: true });
    expect(server.connections).toBe(4);
  });

  test('a pooled socket is unref()ed (and ref()ed again when taken), survives its errors, and closes after keepAliveMs', async () => {
    const unref = jest.spyOn(net.Socket.prototype, 'unref');
    const ref = jest.spyOn(net.Socket.prototype, 'ref');
    const { server, port } = await serve(answerWith(Buffer.from('ok')));
    // idleMs shorter than keepAliveMs: the socket must not keep the timeout of its request.
    const read = reader({ idleMs: 100, keepAliveMs: 400 });
    expect(await read.get(request(port, '/1', Buffer.alloc(2)))).toEqual({ status: 206, read: true });
    await until(() => unref.mock.contexts.some((socket) => (socket as Socket).remotePort === port));
    const at = unref.mock.contexts.findIndex((socket) => (socket as Socket).remotePort === port);
    const [client, unrefOrder] = [unref.mock.contexts[at], unref.mock.invocationCallOrder[at]!];
    expect(await read.get(request(port, '/2', Buffer.alloc(2)))).toEqual({ status: 206, read: true });
    expect(server.connections).toBe(1);
    expect(ref.mock.contexts.some((socket, call) => socket === client && ref.mock.invocationCallOrder[call]! > unrefOrder)).toBe(true);
    await sleep(250);
    expect(server.closed).toBe(0);
    await until(() => server.closed === 1, 2000);
    // A reset of an idle pooled socket is no uncaught error.
    expect(await read.get(request(port, '/3', Buffer.alloc(2)))).toEqual({ status: 206, read: true });
    await until(() => server.sockets.size === 1);
    [...server.sockets][0]!.resetAndDestroy();
    await sleep(50);
    expect(await read.get(request(port, '/4', Buffer.alloc(2)))).toEqual({ status: 206, read: true });
    expect(server.connections).toBe(3);
  });

  test('at most maxSockets connections; further requests wait in order', async () => {
    let open = 0;
    let most = 0;
    const { server, port } = await serve(async ({ socket }) => {
      most = Math.max(most, ++open);
      await sleep(30);
      open--;
      socket.write(responseHead(206, [['Content-Length', 2]]) + 'ok');
    });
    const read = reader({ maxSockets: 2 });
    const paths = ['/a', '/b', '/c', '/d', '/e', '/f'];
    const answers = await Promise.all(paths.map((path) => read.get(request(port, path, Buffer.alloc(2)))));
    expect(answers.every((answer) => answer.read)).toBe(true);
    expect(most).toBe(2);
    expect(server.connections).toBe(2);
    expect(server.heads.map((head) => head.split(' ')[1])).toEqual(paths);
  });

  test('a reused connection closed or reset before its answer: the request goes once more on a new one', async () => {
    const { server, port } = await serve(({ socket, connection, index }) => {
      if (index === 1 && connection === 1) return socket.destroy();
      if (index === 1 && connection === 2) return socket.resetAndDestroy();
      socket.write(responseHead(206, [['Content-Length', 2]]) + 'ok');
    });
    const read = reader({ maxSockets: 1 });
    for (const path of ['/1', '/2', '/3', '/4']) {
      const into = Buffer.alloc(2);
      expect(await read.get(request(port, path, into))).toEqual({ status: 206, read: true });
      expect(into.toString()).toBe('ok');
    }
    expect(server.heads.map((head) => head.split(' ')[1])).toEqual(['/1', '/2', '/2', '/3', '/3', '/4']);
    expect(server.connections).toBe(3);
  });

  test('the retry takes a new connection, not another pooled one', async () => {
    let stale = false;
    const { server, port } = await serve(({ socket, index }) => {
      if (stale && index > 0) return socket.destroy();
      socket.write(responseHead(206, [['Content-Length', 2]]) + 'ok');
    });
    const read = reader({ maxSockets: 3 });
    await Promise.all(['/a', '/b'].map((path) => read.get(request(port, path, Buffer.alloc(2)))));
    expect(server.connections).toBe(2);
    stale = true;
    expect(await read.get(request(port, '/c', Buffer.alloc(2)))).toEqual({ status: 206, read: true });
    expect(server.heads.filter((head) => head.startsWith('GET /c '))).toHaveLength(2);
    expect(server.connections).toBe(3);
  });

  test('a new connection closed before its answer, a retry closed again, or a reused one closed after a byte, rejects', async () => {
    const { server, port } = await serve(({ socket, head, index }) => {
      if (head.includes('/partial') && index === 1) return socket.end('HTTP/1.1 20');
      if (head.includes('/again') && index === 1) return socket.destroy();
      if (head.includes('/fresh') || head.includes('/again')) return socket.destroy();
      socket.write(responseHead(206, [['Content-Length', 2]]) + 'ok');
    });
    const read = reader({ maxSockets: 1 });
    expect((await rejection(read.get(request(port, '/fresh', Buffer.alloc(2))))).message).toBe('GET /fresh: the connection closed before the answer came');
    expect(server.connections).toBe(1);
    await read.get(request(port, '/warm', Buffer.alloc(2)));
    expect((await rejection(read.get(request(port, '/again', Buffer.alloc(2))))).message).toMatch(/^GET \/again: the connection closed before the answer came/);
    expect(server.connections).toBe(3);
    await read.get(request(port, '/warm', Buffer.alloc(2)));
    expect((await rejection(read.get(request(port, '/partial', Buffer.alloc(2))))).message).toMatch(/^GET \/partial: the connection closed before the answer came/);
    expect(server.connections).toBe(4);
  });

  test('a refused connection rejects with the reason', async () => {
    const { port } = await serve(() => {});
    await servers.pop()!.close();
    expect((await rejection(reader().get(request(port, '/gone', Buffer.alloc(2))))).message).toMatch(/^GET \/gone: the connection closed before the answer came: connect ECONNREFUSED/);
  });

  test('no byte for idleMs before or within the answer rejects and closes; a slow but steady body does not', async () => {
    const body = randomBytes(60);
    const { server, port } = await serve(async ({ socket, head }) => {
      if (head.includes('/silent')) return;
      if (head.includes('/stalled')) return socket.write(responseHead(206, [['Content-Length', 60]]) + 'only this much');
      await trickle(socket, [responseHead(206, [['Content-Length', 60]]), ...pieces(body, 10)], 100);
    });
    const read = reader({ idleMs: 200 });
    const started = Date.now();
    expect((await rejection(read.get(request(port, '/silent', Buffer.alloc(60))))).message).toBe('GET /silent: the server sent nothing for 200 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect((await rejection(read.get(request(port, '/stalled', Buffer.alloc(60))))).message).toBe('GET /stalled: the server sent nothing for 200 ms');
    await until(() => server.closed === 2, 2000);
    const into = Buffer.alloc(60);
    expect(await read.get(request(port, '/steady', into))).toEqual({ status: 206, read: true });
    expect(into.equals(body)).toBe(true);
  });

  test('the connection closing mid-body rejects, naming the bytes that came', async () => {
    const { port } = await serve(({ socket }) => socket.end(responseHead(206, [['Content-Length', 10]]) + 'abcde'));
    const error = await rejection(reader().get(request(port, '/cut', Buffer.alloc(10))));
    expect(error.message).toBe('GET /cut: the connection closed after 5 of 10 body bytes');
  });

  test('an abort rejects at once with its reason and closes the socket in use', async () => {
    const { server, port } = await serve(({ socket }) => socket.write(responseHead(206, [['Content-Length', 10]]) + 'abc'));
    const controller = new AbortController();
    const answer = reader({ idleMs: 5000 }).get(request(port, '/slow', Buffer.alloc(10), { signal: controller.signal }));
    await until(() => server.heads.length === 1);
    await sleep(20);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(answer).rejects.toBe(reason);
    await until(() => server.closed === 1, 2000);
  });

  test('an abort takes a queued request out of the queue; an aborted signal sends nothing', async () => {
    const { server, port } = await serve(async ({ socket }) => {
      await sleep(50);
      socket.write(responseHead(206, [['Content-Length', 2]]) + 'ok');
    });
    const read = reader({ maxSockets: 1, idleMs: 5000 });
    const controller = new AbortController();
    const first = read.get(request(port, '/first', Buffer.alloc(2)));
    const queued = read.get(request(port, '/queued', Buffer.alloc(2), { signal: controller.signal }));
    const last = read.get(request(port, '/last', Buffer.alloc(2)));
    controller.abort();
    await expect(queued).rejects.toBe(controller.signal.reason);
    expect(await first).toEqual({ status: 206, read: true });
    expect(await last).toEqual({ status: 206, read: true });
    await expect(read.get(request(port, '/never', Buffer.alloc(2), { signal: controller.signal }))).rejects.toBe(controller.signal.reason);
    await sleep(50);
    expect(server.heads.map((head) => head.split(' ')[1])).toEqual(['/first', '/last']);
    expect(server.connections).toBe(1);
  });

  test('destroy() closes every socket and rejects requests in flight and queued', async () => {
    const { server, port } = await serve(() => {});
    const read = reader({ maxSockets: 1, idleMs: 5000 });
    const inFlight = read.get(request(port, '/1', Buffer.alloc(2)));
    const queued = read.get(request(port, '/2', Buffer.alloc(2)));
    await until(() => server.heads.length === 1);
    read.destroy();
    expect((await rejection(inFlight)).message).toBe('GET /1: the body reader was destroyed');
    expect((await rejection(queued)).message).toBe('GET /2: the body reader was destroyed');
    await until(() => server.closed === 1, 2000);
    expect((await rejection(read.get(request(port, '/3', Buffer.alloc(2))))).message).toBe('GET /3: the body reader was destroyed');
  });

  test('sets TCP_NODELAY on every socket', async () => {
    const noDelay = jest.spyOn(net.Socket.prototype, 'setNoDelay');
    const { port } = await serve(answerWith(Buffer.from('ok'), [['Connection', 'close']]));
    const read = reader({ maxSockets: 1 });
    for (const path of ['/1', '/2']) await read.get(request(port, path, Buffer.alloc(2)));
    expect(clientCalls(noDelay)).toEqual([[true], [true]]);
  });
});

describe('BodyReader over TLS', () => {
  let certificate: { key: string; cert: string };

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'body-reader-cert-'));
    try {
      await promisify(execFile)('openssl', [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:TRUE'],
      ]);
      certificate = { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert: await readFile(join(dir, 'cert.pem'), 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('reads bodies in pieces over one kept connection, trusting the CA given, with TCP_NODELAY', async () => {
    const noDelay = jest.spyOn(net.Socket.prototype, 'setNoDelay');
    const bodies = [randomBytes(5000), randomBytes(3000)];
    const { server, port } = await serve(async ({ socket, index }) => {
      const body = bodies[index]!;
      await trickle(socket, [responseHead(206, [['Content-Length', body.length]]), ...pieces(body, 700)]);
    }, certificate);
    const read = reader({ tls: { ca: certificate.cert } });
    for (const [at, body] of bodies.entries()) {
      const into = Buffer.alloc(body.length);
      expect(await read.get(request(port, `/${at}`, into, { protocol: 'https:' }))).toEqual({ status: 206, read: true });
      expect(into.equals(body)).toBe(true);
    }
    expect(server.connections).toBe(1);
    expect(clientCalls(noDelay)).toEqual([[true]]);
  });

  test('a certificate it does not trust rejects', async () => {
    const { port } = await serve(answerWith(Buffer.from('ok')), certificate);
    const error = await rejection(reader().get(request(port, '/untrusted', Buffer.alloc(2), { protocol: 'https:' })));
    expect(error.message).toMatch(/^GET \/untrusted: the connection closed before the answer came: self[- ]signed certificate/);
  });
});
