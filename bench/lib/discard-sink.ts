import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';

export interface DiscardSink {
  endpoint: string;
  /** Body bytes received and thrown away. */
  bytes(): number;
  close(): Promise<void>;
}

interface RequestHead {
  method: string;
  path: string;
  query: URLSearchParams;
  contentLength: number;
  expectContinue: boolean;
  chunked: boolean;
}

/**
 * An S3 API endpoint on loopback that throws the bytes away: it answers PutObject,
 * CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload and an
 * empty ListObjects, stores nothing and checks no signature, so a bench measures the client.
 *
 * It reads HTTP/1.1 off the socket itself and counts body bytes without looking at them.
 * A real S3 endpoint costs the uploading machine nothing, while this one shares its 2 cores:
 * node:http's server spent 1.5-1.6 CPU-s per GB received here, this one about a third of
 * that (a bare socket reader: 0.45-0.49), which leaves the cores to the clients measured.
 */
export async function startDiscardSink(): Promise<DiscardSink> {
  let received = 0;
  let nextUpload = 0;
  const sockets = new Set<Socket>();

  const answer = (socket: Socket, request: RequestHead) => {
    const key = request.path.split('/').slice(2).join('/');
    const reply = (status: string, headers: Record<string, string>, body = '') => {
      const lines = Object.entries({ ...headers, 'content-length': String(Buffer.byteLength(body)) }).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.write(`HTTP/1.1 ${status}\r\n${lines.join('')}\r\n${body}`);
    };
    const xml = (body: string) => reply('200 OK', { 'content-type': 'application/xml' }, `<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    const { method, query } = request;
    if (method === 'POST' && query.has('uploads')) {
      nextUpload += 1;
      return xml(`<InitiateMultipartUploadResult><Key>${key}</Key><UploadId>u${nextUpload}</UploadId></InitiateMultipartUploadResult>`);
    }
    if (method === 'POST' && query.has('uploadId')) return xml(`<CompleteMultipartUploadResult><Key>${key}</Key><ETag>"sink"</ETag></CompleteMultipartUploadResult>`);
    if (method === 'PUT') return reply('200 OK', { etag: '"sink"' });
    if (method === 'DELETE') return reply('204 No Content', {});
    if (method === 'GET' && !key) return xml('<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>');
    return reply('404 Not Found', { 'content-type': 'application/xml' }, '<Error><Code>NoSuchKey</Code><Message>The sink stores nothing.</Message></Error>');
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head: Buffer = Buffer.alloc(0);
    let request: RequestHead | undefined;
    let bodyLeft = 0;
    socket.on('data', (chunk: Buffer) => {
      let input: Buffer = chunk;
      while (input.length > 0) {
        if (request) {
          const take = Math.min(bodyLeft, input.length);
          received += take;
          bodyLeft -= take;
          input = input.subarray(take);
          if (bodyLeft > 0) return;
          answer(socket, request);
          request = undefined;
          continue;
        }
        head = head.length ? Buffer.concat([head, input]) : input;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const parsed = parseHead(head.subarray(0, end).toString('latin1'));
        input = head.subarray(end + 4);
        head = Buffer.alloc(0);
        if (parsed.chunked) {
          socket.end('HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
          return;
        }
        if (parsed.expectContinue) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        request = parsed;
        bodyLeft = parsed.contentLength;
      }
      if (request && bodyLeft === 0) {
        answer(socket, request);
        request = undefined;
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bytes: () => received,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

function parseHead(text: string): RequestHead {
  const [requestLine = '', ...headerLines] = text.split('\r\n');
  const [method = '', target = '/'] = requestLine.split(' ');
  const headers = new Map(headerLines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  const url = new URL(target, 'http://sink');
  return {
    method,
    path: decodeURIComponent(url.pathname),
    query: url.searchParams,
    contentLength: Number(headers.get('content-length') ?? 0),
    expectContinue: headers.get('expect')?.toLowerCase() === '100-continue',
    chunked: headers.get('transfer-encoding')?.toLowerCase().includes('chunked') ?? false,
  };
}
