import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { MetadataClient } from '../../src/providers/metadata/client.js';

/** A raw loopback server: `answer` gets each connection's data and the socket. */
async function rawServer(answer: (socket: net.Socket, data: string, connection: number) => void) {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    const connection = sockets.push(socket);
    socket.on('data', (data) => answer(socket, data.toString('utf8'), connection));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function start(answer: Parameters<typeof rawServer>[0]) {
  const server = await rawServer(answer);
  const client = new MetadataClient(server.url);
  closers.push(server.close, async () => client.close());
  return { server, client };
}

describe('MetadataClient over raw sockets', () => {
  test('writes one request with Host, the headers, keep-alive and a body length', async () => {
    const seen: string[] = [];
    const { client, server } = await start((socket, data) => {
      seen.push(data);
      socket.write(OK);
    });
    await client.request({ method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' }, body: 'é', timeoutMs: 2000 });
    expect(seen).toEqual([`PUT /latest/api/token HTTP/1.1\r\nhost: ${new URL(server.url).host}\r\nconnection: keep-alive\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\ncontent-length: 2\r\n\r\né`]);
  });

  test('a kept-alive connection carries the next request; connection: close is not reused', async () => {
    const { client, server } = await start((socket, data) => socket.write(data.startsWith('GET /close') ? 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' : OK));
    for (let index = 0; index < 3; index += 1) await client.request({ path: '/a', timeoutMs: 2000 });
    expect(server.sockets).toHaveLength(1);
    await client.request({ path: '/close', timeoutMs: 2000 });
    await client.request({ path: '/a', timeoutMs: 2000 });
    expect(server.sockets).toHaveLength(2);
  });

  test.each(['GET', 'PUT'] as const)('a %s on a pooled connection the server closed is retried once on a fresh one', async (method) => {
    let requests = 0;
    const { client, server } = await start((socket, _data, connection) => {
      requests += 1;
      // The first connection answers once, then drops the next request unanswered, as a server
      // whose keep-alive timeout ran out just as the request was sent.
      if (connection === 1 && requests > 1) socket.destroy();
      else socket.write(OK);
    });
    await client.request({ path: '/a', timeoutMs: 2000 });
    await expect(client.request({ method, path: '/b', timeoutMs: 2000 })).resolves.toMatchObject({ status: 200, body: 'ok' });
    expect(server.sockets).toHaveLength(2);
    expect(requests).toBe(3);
  });

  test('a POST on a pooled connection the server closed is not sent again', async () => {
    let requests = 0;
    const { client, server } = await start((socket) => {
      requests += 1;
      if (requests > 1) socket.destroy();
      else socket.write(OK);
    });
    await client.request({ path: '/a', timeoutMs: 2000 });
    await expect(client.request({ method: 'POST', path: '/b', body: 'x', timeoutMs: 2000 })).rejects.toMatchObject({ kind: 'connection_reset' });
    expect(server.sockets).toHaveLength(1);
    expect(requests).toBe(2);
  });

  test('a fresh connection closed without an answer is not retried', async () => {
    let requests = 0;
    const { client } = await start((socket) => {
      requests += 1;
      socket.destroy();
    });
    await expect(client.request({ path: '/a', timeoutMs: 2000 })).rejects.toMatchObject({ kind: 'connection_reset', code: 'ERR_METADATA_UNREACHABLE' });
    expect(requests).toBe(1);
  });

  test('a body that drips in times out over the whole exchange, and the connection is dropped', async () => {
    const { client, server } = await start((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n');
      const drip = setInterval(() => (socket.destroyed ? clearInterval(drip) : socket.write('a')), 20);
      socket.on('close', () => clearInterval(drip));
    });
    await expect(client.request({ path: '/a', timeoutMs: 200 })).rejects.toMatchObject({ kind: 'timeout', message: 'no complete answer within 200 ms' });
    await new Promise<void>((resolve) => (server.sockets[0]!.destroyed ? resolve() : server.sockets[0]!.on('close', () => resolve())));
  });

  test('an abort ends the exchange at once', async () => {
    const { client } = await start(() => undefined);
    const controller = new AbortController();
    const request = client.request({ path: '/a', timeoutMs: 5000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(request).rejects.toMatchObject({ kind: 'aborted', code: 'ERR_METADATA_CANCELLED' });
  });

  test('a garbage answer is a network error naming it', async () => {
    const { client } = await start((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'));
    await expect(client.request({ path: '/a', timeoutMs: 2000 })).rejects.toMatchObject({ kind: 'network', message: 'malformed HTTP response: bad status line "SSH-2.0-OpenSSH_9.6"' });
  });

  test('a refused connection is connection_refused', async () => {
    const server = await rawServer(() => undefined);
    await server.close();
    await expect(new MetadataClient(server.url).request({ path: '/a', timeoutMs: 2000 })).rejects.toMatchObject({ kind: 'connection_refused' });
  });

  test('a header value with a line break is refused before anything is sent', async () => {
    const { client, server } = await start((socket) => socket.write(OK));
    await expect(client.request({ path: '/a', headers: { 'x-token': 'a\r\nx-evil: 1' }, timeoutMs: 2000 })).rejects.toThrow('metadata request header x-token has a character other than printable ASCII or tab');
    expect(server.sockets).toHaveLength(0);
  });
});

test('node:http chunked answers, written in many pieces, on one kept-alive connection', async () => {
  const connections = new Set<net.Socket>();
  const server = http.createServer((_request, response) => {
    response.setHeader('ETag', '"7"');
    for (let index = 0; index < 50; index += 1) response.write(`piece ${index};`);
    response.end();
  });
  server.on('connection', (socket) => connections.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new MetadataClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const expected = Array.from({ length: 50 }, (_, index) => `piece ${index};`).join('');
    for (let index = 0; index < 3; index += 1) {
      await expect(client.request({ path: '/x', timeoutMs: 2000 })).resolves.toMatchObject({ status: 200, headers: { etag: '"7"', 'transfer-encoding': 'chunked' }, body: expected });
    }
    expect(connections.size).toBe(1);
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
