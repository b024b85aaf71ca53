import type { IncomingHttpHeaders } from 'node:http';
import { MetadataRequestError } from '../../lib/errors.js';

/** Metadata bodies are a few hundred bytes; anything this large is garbage, not a notice. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Status line and headers together, node:http's default bound. */
export const MAX_HEADER_BYTES = 16 * 1024;

export interface ParsedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The connection may carry another request: HTTP/1.1 (or 1.0 keep-alive), no `connection: close`, body not read to close. */
  keepAlive: boolean;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'to-close' | 'done';

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CHUNK_SIZE = /^[0-9a-fA-F]{1,8}$/;
/** As node:http: a repeat of these keeps the first value; other repeats are joined with ", ". */
const FIRST_WINS = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);
const EMPTY = Buffer.alloc(0);

function malformed(what: string): MetadataRequestError {
  return new MetadataRequestError('network', `malformed HTTP response: ${what}`);
}

function quoted(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

/**
 * An incremental HTTP/1.1 response parser for one exchange: `push` each read as it arrives (reads
 * may split anywhere), `end` when the peer closes. Bodies by content-length, chunked transfer
 * encoding or to close; hard bounds on headers and body.
 */
export class ResponseParser {
  /** Bytes received but not yet consumed. */
  private pending: Buffer = EMPTY;
  private state: State = 'head';
  private remaining = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private keepAlive = false;
  /** Any byte of a response arrived (a pooled connection the server closed shows none). */
  started = false;
  /** Bytes arrived after the response ended: the connection is out of step and must not be reused. */
  trailing = false;

  push(data: Buffer): ParsedResponse | undefined {
    this.started = true;
    if (this.state === 'done') {
      this.trailing = true;
      return undefined;
    }
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    while (this.pending.length > 0 && !this.complete() && this.step());
    if (!this.complete()) return undefined;
    if (this.pending.length > 0) this.trailing = true;
    return this.response();
  }

  private complete(): boolean {
    return this.state === 'done';
  }

  /** The peer closed: a body read to close is complete now, anything else was cut short. */
  end(): ParsedResponse {
    if (this.state === 'to-close' || this.state === 'done') {
      this.state = 'done';
      return this.response();
    }
    throw new MetadataRequestError('connection_reset', this.started ? 'connection closed mid-response' : 'connection closed before any response');
  }

  private response(): ParsedResponse {
    const body = this.chunks.length === 1 ? this.chunks[0]!.toString('utf8') : Buffer.concat(this.chunks).toString('utf8');
    return { status: this.status, headers: this.headers, body, keepAlive: this.keepAlive };
  }

  /** Consumes what it can from `pending`; false when it needs more bytes. */
  private step(): boolean {
    switch (this.state) {
      case 'head':
        return this.head();
      case 'length':
      case 'chunk-data':
      case 'to-close':
        return this.bodyBytes();
      case 'chunk-size':
        return this.chunkSize();
      case 'chunk-end':
        if (this.pending.length < 2) return false;
        if (this.pending[0] !== 13 || this.pending[1] !== 10) throw malformed('chunk data not followed by CRLF');
        this.pending = this.pending.subarray(2);
        this.state = 'chunk-size';
        return true;
      default:
        return this.trailer();
    }
  }

  private head(): boolean {
    const end = this.pending.indexOf('\r\n\r\n');
    if (end < 0 || end + 4 > MAX_HEADER_BYTES) {
      if (this.pending.length >= MAX_HEADER_BYTES) throw malformed(`status line and headers larger than ${MAX_HEADER_BYTES} bytes`);
      return false;
    }
    const lines = this.pending.toString('latin1', 0, end).split('\r\n');
    this.pending = this.pending.subarray(end + 4);
    const match = STATUS_LINE.exec(lines[0]!);
    if (!match) throw malformed(`bad status line ${quoted(lines[0]!)}`);
    const status = Number(match[2]);
    const headers: IncomingHttpHeaders = {};
    for (let index = 1; index < lines.length; index += 1) addHeader(headers, lines[index]!);
    // An interim answer (100 Continue, 103 Early Hints) precedes the real one.
    if (status < 200 && status !== 101) return true;
    this.status = status;
    this.headers = headers;
    const connection = headers.connection?.toLowerCase() ?? '';
    this.keepAlive = match[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    this.bodyFraming(headers);
    return true;
  }

  private bodyFraming(headers: IncomingHttpHeaders): void {
    const encoding = headers['transfer-encoding'];
    const length = headers['content-length'];
    if (this.status === 204 || this.status === 304) {
      this.state = 'done';
    } else if (encoding !== undefined) {
      if (length !== undefined) throw malformed('both content-length and transfer-encoding');
      if (/(?:^|,)\s*chunked\s*$/i.test(encoding)) this.state = 'chunk-size';
      else this.readToClose();
    } else if (length !== undefined) {
      if (!/^\d{1,16}$/.test(length)) throw malformed(`bad content-length ${quoted(length)}`);
      this.remaining = Number(length);
      if (this.remaining > MAX_BODY_BYTES) throw tooLarge();
      this.state = this.remaining === 0 ? 'done' : 'length';
    } else {
      this.readToClose();
    }
  }

  private readToClose(): void {
    this.state = 'to-close';
    this.keepAlive = false;
  }

  private bodyBytes(): boolean {
    const take = this.state === 'to-close' ? this.pending.length : Math.min(this.remaining, this.pending.length);
    this.size += take;
    if (this.size > MAX_BODY_BYTES) throw tooLarge();
    this.chunks.push(take === this.pending.length ? this.pending : this.pending.subarray(0, take));
    this.pending = take === this.pending.length ? EMPTY : this.pending.subarray(take);
    if (this.state === 'to-close') return true;
    this.remaining -= take;
    if (this.remaining === 0) this.state = this.state === 'length' ? 'done' : 'chunk-end';
    return true;
  }

  private chunkSize(): boolean {
    const line = this.line('chunk size line');
    if (line === undefined) return false;
    const semicolon = line.indexOf(';');
    const digits = (semicolon < 0 ? line : line.slice(0, semicolon)).trim();
    if (!CHUNK_SIZE.test(digits)) throw malformed(`bad chunk size ${quoted(line)}`);
    this.remaining = parseInt(digits, 16);
    this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
    return true;
  }

  private trailer(): boolean {
    const line = this.line('trailer');
    if (line === undefined) return false;
    if (line === '') this.state = 'done';
    return true;
  }

  /** The next CRLF-terminated line, consumed; undefined until it is complete. */
  private line(what: string): string | undefined {
    const end = this.pending.indexOf('\r\n');
    if (end < 0) {
      if (this.pending.length >= MAX_HEADER_BYTES) throw malformed(`${what} longer than ${MAX_HEADER_BYTES} bytes`);
      return undefined;
    }
    const line = this.pending.toString('latin1', 0, end);
    this.pending = this.pending.subarray(end + 2);
    return line;
  }
}

function tooLarge(): MetadataRequestError {
  return new MetadataRequestError('body_too_large', `response body larger than ${MAX_BODY_BYTES} bytes`);
}

function addHeader(headers: IncomingHttpHeaders, line: string): void {
  const colon = line.indexOf(':');
  const name = colon > 0 ? line.slice(0, colon) : '';
  if (!TOKEN.test(name)) throw malformed(`bad header line ${quoted(line)}`);
  const key = name.toLowerCase();
  const value = line.slice(colon + 1).trim();
  const previous = headers[key];
  if (key === 'set-cookie') {
    headers['set-cookie'] = [...(headers['set-cookie'] ?? []), value];
  } else if (previous === undefined) {
    headers[key] = value;
  } else if (key === 'content-length') {
    if (previous !== value) throw malformed('conflicting content-length headers');
  } else if (!FIRST_WINS.has(key)) {
    headers[key] = `${previous as string}, ${value}`;
  }
}
