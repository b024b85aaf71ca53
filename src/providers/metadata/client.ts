import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { MetadataRequestError } from '../../lib/errors.js';
import { ResponseParser, type ParsedResponse } from './response-parser.js';

export interface MetadataRequest {
  method?: 'GET' | 'PUT' | 'POST';
  /** Path and query, e.g. `/latest/meta-data/spot/instance-action`. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Bounds connect, headers and the whole body (a slow drip body times out too). */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface MetadataResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Idle kept-alive connections kept for the next request; more are closed. */
const MAX_IDLE_SOCKETS = 4;
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A minimal HTTP/1.1 client for the metadata service, used on the poll hot path: one request
 * string written to a kept-alive `net` socket, the answer read by ResponseParser.
 * Why not got here: at one request per second all day, got's per-request option
 * normalisation and hook machinery cost measurably more CPU than node:http with a
 * keep-alive agent; and node:http's own request and response paths were most of what an idle
 * agent still ran (docs/benchmarks.md, Round 7); this exchange took idle CPU per poll from
 * 1.52 to 1.08 ms (0.72x to 0.51x a plain got loop, Round 9).
 * Everything else (webhooks, drains) uses got.
 */
export class MetadataClient {
  readonly baseUrl: URL;
  private readonly hostHeader: string;
  private readonly connectHost: string;
  private readonly port: number;
  private readonly idle: Connection[] = [];

  constructor(baseUrl: string) {
    this.baseUrl = new URL(baseUrl);
    this.hostHeader = this.baseUrl.host;
    this.connectHost = this.baseUrl.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(this.baseUrl.port || 80);
  }

  request(request: MetadataRequest): Promise<MetadataResponse> {
    if (this.baseUrl.protocol !== 'http:') {
      return Promise.reject(new MetadataRequestError('network', `metadata URL ${this.baseUrl.href} is not http:// (the metadata service is plain HTTP)`));
    }
    if (request.signal?.aborted) return Promise.reject(new MetadataRequestError('aborted', 'request aborted'));
    let message: string;
    try {
      message = this.message(request);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    // Every source (hanging GETs included) and every instance fact may be in flight at once, each
    // on its own connection: a slow fact read never queues a notice read.
    return new Promise((resolve, reject) => new Exchange(this, request, message, resolve, reject).start(this.idle.pop()));
  }

  /** Closes idle keep-alive sockets so the process can exit at once. */
  close(): void {
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
  }

  /** A fresh connection; its socket buffers the request until it connects. */
  connect(): Connection {
    return new Connection(net.connect({ host: this.connectHost, port: this.port }), this);
  }

  /** Keeps a connection whose exchange ended cleanly for the next request, or closes it. */
  release(connection: Connection): void {
    if (connection.socket.destroyed || connection.socket.readableEnded || this.idle.length >= MAX_IDLE_SOCKETS) {
      connection.socket.destroy();
      return;
    }
    connection.socket.unref();
    this.idle.push(connection);
  }

  /** An idle connection the server closed. */
  forget(connection: Connection): void {
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
  }

  private message(request: MetadataRequest): string {
    const method = request.method ?? 'GET';
    if (/\s/.test(request.path)) throw new TypeError(`metadata request path ${JSON.stringify(request.path)} contains whitespace`);
    let message = `${method} ${request.path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\nconnection: keep-alive\r\n`;
    if (request.headers) {
      for (const name in request.headers) {
        const value = request.headers[name]!;
        if (!HEADER_NAME.test(name)) throw new TypeError(`metadata request header name ${JSON.stringify(name)} is not a valid HTTP token`);
        if (!HEADER_VALUE.test(value)) throw new TypeError(`metadata request header ${name} has a character other than printable ASCII or tab`);
        message += `${name}: ${value}\r\n`;
      }
    }
    // As node:http does, a PUT or POST states its length even without a body.
    if (request.body !== undefined || method !== 'GET') message += `content-length: ${request.body === undefined ? 0 : Buffer.byteLength(request.body)}\r\n`;
    return `${message}\r\n${request.body ?? ''}`;
  }
}

/** A socket with listeners for its whole life, handing events to the exchange it carries, if any. */
class Connection {
  exchange: Exchange | undefined;

  constructor(
    readonly socket: net.Socket,
    client: MetadataClient,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('data', (data: Buffer) => (this.exchange ? this.exchange.data(data) : socket.destroy()));
    socket.on('end', () => this.exchange?.ended());
    socket.on('error', (error: NodeJS.ErrnoException) => this.exchange?.failed(classify(error)));
    socket.on('close', () => (this.exchange ? this.exchange.ended() : client.forget(this)));
  }
}

/** One request and its answer, on a pooled connection or a fresh one. */
class Exchange {
  private connection: Connection | undefined;
  private reused = false;
  private parser = new ResponseParser();
  private settled = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly client: MetadataClient,
    private readonly request: MetadataRequest,
    private readonly message: string,
    private readonly resolve: (response: MetadataResponse) => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.timer = setTimeout(() => this.finish(new MetadataRequestError('timeout', `no complete answer within ${request.timeoutMs} ms`)), request.timeoutMs);
    if (request.signal) {
      this.onAbort = () => this.finish(new MetadataRequestError('aborted', 'request aborted'));
      request.signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  start(pooled: Connection | undefined): void {
    this.reused = pooled !== undefined;
    const connection = pooled ?? this.client.connect();
    this.connection = connection;
    connection.exchange = this;
    if (pooled) connection.socket.ref();
    connection.socket.write(this.message);
  }

  data(data: Buffer): void {
    try {
      const response = this.parser.push(data);
      if (response) this.finish(null, response);
    } catch (error) {
      this.finish(error as Error);
    }
  }

  /** The server closed the connection (or it failed and closed). */
  ended(): void {
    try {
      this.finish(null, this.parser.end());
    } catch (error) {
      this.failed(error as MetadataRequestError);
    }
  }

  failed(error: MetadataRequestError): void {
    // A pooled connection the server closed meanwhile answers nothing; try once more on a fresh
    // one, except a POST, which may have reached the server and must not run twice.
    if (this.reused && !this.parser.started && !this.settled && this.request.method !== 'POST') {
      this.connection!.exchange = undefined;
      this.connection!.socket.destroy();
      this.parser = new ResponseParser();
      this.start(undefined);
      return;
    }
    this.finish(error);
  }

  private finish(error: Error | null, response?: ParsedResponse): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.onAbort) this.request.signal!.removeEventListener('abort', this.onAbort);
    const connection = this.connection!;
    connection.exchange = undefined;
    if (error) {
      connection.socket.destroy();
      this.reject(error);
      return;
    }
    if (response!.keepAlive && !this.parser.trailing) this.client.release(connection);
    else connection.socket.destroy();
    this.resolve({ status: response!.status, headers: response!.headers, body: response!.body });
  }
}

function classify(error: NodeJS.ErrnoException): MetadataRequestError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new MetadataRequestError('connection_refused', 'connection refused', { cause: error });
    case 'ECONNRESET':
    case 'EPIPE':
      return new MetadataRequestError('connection_reset', 'connection reset', { cause: error });
    default:
      return new MetadataRequestError('network', error.code ? `${error.code}: ${error.message}` : error.message, { cause: error });
  }
}
