import { createHash } from 'node:crypto';
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
  range: string | undefined;
  /** The body, kept only for a PUT the sink stores (`keep`). */
  pieces?: Buffer[];
}

export interface DiscardSinkOptions {
  /**
   * Also keep each object stored with a single PUT in memory and serve it back: GetObject
   * (with a `bytes=a-b` or `bytes=a-` Range: 206 and Content-Range, 416 from past the end, as
   * S3 answers; so a restore that reads packs by range can be measured), HeadObject, and ListObjects (V1 and V2, prefix, delimiter,
   * pages of max-keys). Multipart uploads are still thrown away. For benches that read.
   */
  keep?: boolean;
}

interface StoredObject {
  body: Buffer;
  /** Its MD5, as S3 gives a single-PUT object's ETag (clients such as rclone check it). */
  etag: string;
}

/** A stored object's last-modified time: fixed, the sink has no history. */
const MODIFIED = new Date('2026-01-01T00:00:00Z');

/**
 * An S3 API endpoint on loopback that throws the bytes away (unless `keep`): it answers PutObject,
 * CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload and an
 * empty ListObjects, stores nothing and checks no signature, so a bench measures the client.
 *
 * It reads HTTP/1.1 off the socket itself and counts body bytes without looking at them.
 * A real S3 endpoint costs the uploading machine nothing, while this one shares its 2 cores:
 * node:http's server spent 1.5-1.6 CPU-s per GB received here, this one about a third of
 * that (a bare socket reader: 0.45-0.49), which leaves the cores to the clients measured.
 */
export async function startDiscardSink(options: DiscardSinkOptions = {}): Promise<DiscardSink> {
  let received = 0;
  let nextUpload = 0;
  const sockets = new Set<Socket>();
  const objects = new Map<string, StoredObject>();
  let sortedKeys: string[] | undefined;

  const answer = (socket: Socket, request: RequestHead) => {
    const key = request.path.split('/').slice(2).join('/');
    // A HEAD answer says the length of the body it does not send. Head and body leave in one
    // write: as two, Nagle held a small body back for the client's delayed ACK (about 40 ms a
    // GET, which a restore reading many pack ranges would have measured instead of itself).
    const reply = (status: string, headers: Record<string, string>, body: string | Buffer = '') => {
      const lines = Object.entries({ ...headers, 'content-length': String(Buffer.byteLength(body)) }).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.cork();
      socket.write(`HTTP/1.1 ${status}\r\n${lines.join('')}\r\n`);
      if (request.method !== 'HEAD' && body.length) socket.write(body);
      socket.uncork();
    };
    const xml = (body: string) => reply('200 OK', { 'content-type': 'application/xml' }, `<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    const { method, query } = request;
    if (method === 'POST' && query.has('uploads')) {
      nextUpload += 1;
      return xml(`<InitiateMultipartUploadResult><Key>${key}</Key><UploadId>u${nextUpload}</UploadId></InitiateMultipartUploadResult>`);
    }
    if (method === 'POST' && query.has('uploadId')) return xml(`<CompleteMultipartUploadResult><Key>${key}</Key><ETag>"sink"</ETag></CompleteMultipartUploadResult>`);
    if (method === 'PUT' && request.pieces) {
      const body = Buffer.concat(request.pieces);
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      objects.set(key, { body, etag });
      sortedKeys = undefined;
      return reply('200 OK', { etag });
    }
    if (method === 'PUT') return reply('200 OK', { etag: '"sink"' });
    if (method === 'DELETE') return reply('204 No Content', {});
    if (method === 'GET' && !key) {
      sortedKeys ??= [...objects.keys()].sort();
      return xml(listing(sortedKeys, objects, query));
    }
    const stored = objects.get(key);
    if (stored && (method === 'GET' || method === 'HEAD')) {
      const headers = { etag: stored.etag, 'last-modified': MODIFIED.toUTCString(), 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
      const range = /^bytes=(\d+)-(\d*)$/.exec(request.range ?? '');
      if (!range) return reply('200 OK', headers, stored.body);
      const start = Number(range[1]);
      if (start >= stored.body.length) {
        return reply('416 Requested Range Not Satisfiable', { 'content-type': 'application/xml', 'content-range': `bytes */${stored.body.length}` }, '<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message></Error>');
      }
      const end = Math.min(stored.body.length - 1, range[2] ? Number(range[2]) : stored.body.length - 1);
      return reply('206 Partial Content', { ...headers, 'content-range': `bytes ${start}-${end}/${stored.body.length}` }, stored.body.subarray(start, end + 1));
    }
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
          request.pieces?.push(input.subarray(0, take));
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
        if (options.keep && parsed.method === 'PUT' && !parsed.query.has('uploadId')) request.pieces = [];
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
    range: headers.get('range'),
  };
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A ListObjects answer (V2 with `list-type=2`, else V1) over `keys` (sorted): those under
 * `prefix` after the marker (`start-after`, `continuation-token`, `marker`), grouped by
 * `delimiter` into CommonPrefixes, `max-keys` (default 1000) entries a page.
 */
function listing(keys: string[], objects: Map<string, StoredObject>, query: URLSearchParams): string {
  const v2 = query.get('list-type') === '2';
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const after = (v2 ? (query.get('continuation-token') ?? query.get('start-after')) : query.get('marker')) ?? '';
  const maxKeys = Number(query.get('max-keys') ?? 1000);
  const contents: string[] = [];
  const prefixes: string[] = [];
  let last = '';
  let truncated = false;
  for (const key of keys) {
    if (!key.startsWith(prefix) || key <= after) continue;
    // A page that ended on a common prefix goes on after every key under it.
    if (delimiter && after.endsWith(delimiter) && key.startsWith(after)) continue;
    const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    const common = cut >= 0 ? key.slice(0, cut + delimiter.length) : undefined;
    if (common !== undefined && common === prefixes.at(-1)) continue;
    if (contents.length + prefixes.length >= maxKeys) {
      truncated = true;
      break;
    }
    if (common !== undefined) prefixes.push(common);
    else {
      const object = objects.get(key)!;
      contents.push(`<Contents><Key>${escapeXml(key)}</Key><LastModified>${MODIFIED.toISOString()}</LastModified><ETag>${escapeXml(object.etag)}</ETag><Size>${object.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
    }
    last = common ?? key;
  }
  const next = truncated ? (v2 ? `<NextContinuationToken>${escapeXml(last)}</NextContinuationToken>` : `<NextMarker>${escapeXml(last)}</NextMarker>`) : '';
  const common = prefixes.map((name) => `<CommonPrefixes><Prefix>${escapeXml(name)}</Prefix></CommonPrefixes>`).join('');
  return `<ListBucketResult><Name>bench</Name><Prefix>${escapeXml(prefix)}</Prefix>${delimiter ? `<Delimiter>${escapeXml(delimiter)}</Delimiter>` : ''}<MaxKeys>${maxKeys}</MaxKeys><KeyCount>${contents.length + prefixes.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>${next}${contents.join('')}${common}</ListBucketResult>`;
}
