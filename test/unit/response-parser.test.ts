import { MAX_HEADER_BYTES, ResponseParser, type ParsedResponse } from '../../src/providers/metadata/response-parser.js';

/** Feeds `reads` in order; the response once complete, else undefined. */
function parse(...reads: string[]): ParsedResponse | undefined {
  const parser = new ResponseParser();
  let response: ParsedResponse | undefined;
  for (const read of reads) response = parser.push(Buffer.from(read, 'latin1')) ?? response;
  return response;
}

const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "v1"\r\n\r\n5;name=value\r\nhello\r\n7 ; ext\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n';
const LENGTH = 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Aws-Ec2-Metadata-Token-Ttl-Seconds: 21600\r\n\r\nhello world';

describe('ResponseParser', () => {
  test('a content-length body, headers lower-cased as node:http has them', () => {
    expect(parse(LENGTH)).toEqual({ status: 200, headers: { 'content-length': '11', 'x-aws-ec2-metadata-token-ttl-seconds': '21600' }, body: 'hello world', keepAlive: true });
  });

  test('a chunked body with chunk extensions and trailers', () => {
    expect(parse(CHUNKED)).toMatchObject({ status: 200, headers: { etag: '"v1"' }, body: 'hello, world', keepAlive: true });
  });

  test.each([
    ['content-length', LENGTH, 'hello world'],
    ['chunked', CHUNKED, 'hello, world'],
  ])('a %s response split into two reads at every byte boundary', (_framing, text, body) => {
    for (let at = 1; at < text.length; at += 1) {
      expect(parse(text.slice(0, at), text.slice(at))?.body).toBe(body);
    }
  });

  test('a response arriving one byte per read', () => {
    expect(parse(...CHUNKED.split(''))?.body).toBe('hello, world');
  });

  test('a body without framing runs to close, and that connection is not kept', () => {
    const parser = new ResponseParser();
    expect(parser.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\nall of it'))).toBeUndefined();
    expect(parser.end()).toMatchObject({ body: 'all of it', keepAlive: false });
  });

  test('connection: close and HTTP/1.0 without keep-alive are not kept; 204 has no body', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')?.keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')?.keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n')?.keepAlive).toBe(true);
    expect(parse('HTTP/1.1 204 No Content\r\n\r\n')).toMatchObject({ status: 204, body: '' });
  });

  test('an interim 100 Continue is skipped for the answer after it', () => {
    expect(parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno')).toMatchObject({ status: 404, body: 'no' });
  });

  test('repeated headers: joined, the first kept for single-valued ones, set-cookie a list', () => {
    const response = parse('HTTP/1.1 200 OK\r\nVary: a\r\nVary: b\r\nETag: "1"\r\nETag: "2"\r\nSet-Cookie: x=1\r\nSet-Cookie: y=2\r\nContent-Length: 0\r\n\r\n');
    expect(response?.headers).toEqual({ vary: 'a, b', etag: '"1"', 'set-cookie': ['x=1', 'y=2'], 'content-length': '0' });
  });

  test('bytes after a complete response mark the connection as out of step', () => {
    const parser = new ResponseParser();
    expect(parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy'))?.body).toBe('x');
    expect(parser.trailing).toBe(true);
  });

  test.each([
    ['a bad status line', 'HTTP/2 200 OK\r\n\r\n', 'malformed HTTP response: bad status line "HTTP/2 200 OK"'],
    ['not HTTP at all', 'SSH-2.0-OpenSSH_9.6\r\n\r\n', 'malformed HTTP response: bad status line "SSH-2.0-OpenSSH_9.6"'],
    ['a header line without a name', 'HTTP/1.1 200 OK\r\n: x\r\n\r\n', 'malformed HTTP response: bad header line ": x"'],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n', 'malformed HTTP response: bad header line " c"'],
    ['a bad content-length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'malformed HTTP response: bad content-length "-1"'],
    ['conflicting content-lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'malformed HTTP response: conflicting content-length headers'],
    ['both framings', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 'malformed HTTP response: both content-length and transfer-encoding'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'malformed HTTP response: bad chunk size "zz"'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n', 'malformed HTTP response: chunk data not followed by CRLF'],
  ])('%s is a network error naming what was wrong', (_what, text, message) => {
    expect(() => parse(text)).toThrow(expect.objectContaining({ kind: 'network', message }));
  });

  test(`headers over ${MAX_HEADER_BYTES} bytes are refused before their end arrives`, () => {
    const parser = new ResponseParser();
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\n'));
    expect(() => parser.push(Buffer.from(`x-big: ${'a'.repeat(MAX_HEADER_BYTES)}`))).toThrow(
      expect.objectContaining({ kind: 'network', message: `malformed HTTP response: status line and headers larger than ${MAX_HEADER_BYTES} bytes` }),
    );
  });

  test('headers just under the bound are read', () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-big: ';
    expect(parse(`${head}${'a'.repeat(MAX_HEADER_BYTES - head.length - 4)}\r\n\r\n`)?.status).toBe(200);
  });

  test('a body over 1 MiB is body_too_large, by its content-length or as it arrives', () => {
    expect(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n')).toThrow(expect.objectContaining({ kind: 'body_too_large' }));
    const parser = new ResponseParser();
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'));
    const chunk = Buffer.from(`100000\r\n${'a'.repeat(0x100000)}\r\n`);
    parser.push(chunk);
    expect(() => parser.push(Buffer.from('1\r\na\r\n'))).toThrow(expect.objectContaining({ kind: 'body_too_large', code: 'ERR_METADATA_BODY' }));
  });

  test.each([
    ['before any byte', [], 'connection closed before any response'],
    ['in the headers', ['HTTP/1.1 200 OK\r\nContent-Le'], 'connection closed mid-response'],
    ['short of its content-length', ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'], 'connection closed mid-response'],
    ['before the last chunk', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'], 'connection closed mid-response'],
  ])('a close %s is connection_reset', (_when, reads, message) => {
    const parser = new ResponseParser();
    for (const read of reads) parser.push(Buffer.from(read));
    expect(() => parser.end()).toThrow(expect.objectContaining({ kind: 'connection_reset', message }));
  });
});
