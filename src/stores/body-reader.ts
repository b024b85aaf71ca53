/**
 * GETs whose body is read straight into a buffer the caller gives, over a keep-alive pool of
 * HTTP/1.1 connections. node:http allocates a new buffer for every socket read; restoring
 * 2 GiB over loopback, that garbage and the copying out of it cost about 0.5 CPU-s/GB. Here
 * each read lands in the caller's buffer (net.connect's `onread` with a buffer function): a
 * prototype measured 1130-1240 MB/s at 0.92-1.0 CPU-s/GB, against 800-900 MB/s at 1.4-1.65
 * CPU-s/GB through node:http. Only the plain case is handled, an accepted status with the
 * expected Content-Length; any other answer is left to the caller's slower client.
 */
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { PreemptdError } from '../lib/errors.js';
import { headEnd, parseHead, requestHead } from './http-head.js';

export interface BodyRequest {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined; // default 80 / 443
  path: string; // already encoded, with query
  headers: Record<string, string>; // sent as given (already signed; includes host)
  into: Buffer; // the body must be exactly into.length bytes
  accept: readonly number[]; // statuses whose body goes into `into` (e.g. [206])
  signal: AbortSignal;
}

/**
 * `read: true`: exactly into.length body bytes are in `into`. `read: false`: any other answer
 * (status not accepted, no or another Content-Length, Transfer-Encoding), nothing written to
 * `into` is meaningful; the caller falls back to its slower client.
 */
export interface BodyAnswer { status: number; read: boolean }

export interface BodyReaderOptions {
  maxSockets: number; // per origin (protocol, host, port), as node:http's Agent counts
  idleMs: number; // longest wait for a byte of an answer
  keepAliveMs?: number; // how long an unused connection stays open; default 4000
  tls?: ConnectionOptions; // extra options for tls.connect (tests pass a CA)
}

/** Per-socket head buffer: a head that does not fit is refused. */
const HEAD_BYTES = 16 * 1024;
/** The largest body of a refused answer read off to keep its connection; a larger one costs more than a new connection. */
const DRAIN_BYTES = 64 * 1024;

interface Job {
  readonly request: BodyRequest;
  /** The request in messages; without its query, which may hold a presigned URL's signature. */
  readonly what: string;
  /** Sent again after a reused connection closed on it; a second close rejects it. */
  retried: boolean;
  connection: Connection | undefined;
  settle(error: unknown, answer?: BodyAnswer): void;
}

/** One socket, and where its next bytes go. */
class Connection {
  readonly head = Buffer.allocUnsafe(HEAD_BYTES);
  /** head: an answer's head, into `head`; body: into the request's `into`; drain: a refused answer's body, into `head`; idle: no answer due. */
  mode: 'head' | 'body' | 'drain' | 'idle' = 'idle';
  headFilled = 0;
  filled = 0;
  drainLeft = 0;
  status = 0;
  job: Job | undefined;
  /** Whether the answer being read leaves the connection fit for another request. */
  keep = false;
  answers = 0;
  /** Whether a byte came since the request went out. */
  heard = false;
  error: Error | undefined;
  readonly socket: Socket;

  constructor(readonly pool: Pool) {
    // buffer() runs inside connect(), before it returns: the fields it reads are set above.
    const onread: OnReadOpts = { buffer: () => this.nextBuffer(), callback: (nread) => this.onRead(nread) };
    const { protocol, hostname, port } = pool.origin;
    // SNI takes no IP address (RFC 6066); the certificate is still checked against `host`.
    const secure = { host: hostname, port: port ?? 443, servername: isIP(hostname) ? undefined : hostname, onread, ...pool.options.tls };
    this.socket = protocol === 'https:' ? tlsConnect(secure) : netConnect({ host: hostname, port: port ?? 80, onread });
    // A request head is a single write: Nagle would hold it until the last answer's ACK.
    this.socket.setNoDelay(true);
    // Seen through 'close'; on a pooled socket an error is expected (the server dropped it).
    this.socket.on('error', (error) => (this.error = error));
    this.socket.on('timeout', () => this.fail(`the server sent nothing for ${pool.options.idleMs} ms`));
    this.socket.on('close', () => this.closed());
  }

  /**
   * Where the next read lands. Node asks right after each read's callback returns, so the
   * state must be the next one by then: a finished body hands out `head` (a zero-length view
   * fails the read with ENOBUFS), which is where the next request's answer starts.
   */
  private nextBuffer(): Buffer {
    if (this.mode === 'body') return this.job!.request.into.subarray(this.filled);
    return this.headFilled === 0 ? this.head : this.head.subarray(this.headFilled);
  }

  send(job: Job): void {
    this.job = job;
    this.mode = 'head';
    this.heard = false;
    job.connection = this;
    this.socket.ref();
    this.socket.setTimeout(this.pool.options.idleMs);
    this.socket.write(requestHead(job.request.path, job.request.headers), 'latin1');
  }

  /** Back in the pool: it must not keep the process alive, and closes after keepAliveMs unused. */
  rest(): void {
    this.socket.unref();
    this.socket.setTimeout(this.pool.options.keepAliveMs ?? 4000);
  }

  private onRead(nread: number): boolean {
    this.heard = true;
    if (this.mode === 'head') {
      this.headFilled += nread;
      this.readHead(nread);
    } else if (this.mode === 'body') {
      this.filled += nread;
      if (this.filled === this.job!.request.into.length) this.done(this.job);
    } else if (this.mode === 'drain') {
      this.drainLeft -= nread;
      if (this.drainLeft < 0) this.destroy();
      else if (this.drainLeft === 0) this.done();
    } else {
      // Bytes no request asked for: what follows on this stream cannot be trusted to line up.
      this.destroy();
    }
    return true;
  }

  private readHead(nread: number): void {
    const end = headEnd(this.head, this.headFilled, nread);
    if (end === -1) {
      if (this.headFilled === HEAD_BYTES) this.fail(`the answer has a head larger than ${HEAD_BYTES / 1024} KiB`);
      return;
    }
    const head = parseHead(this.head.toString('latin1', 0, end));
    if (typeof head === 'string') return this.fail(`the answer has ${head}`);
    const job = this.job!;
    const { into, accept } = job.request;
    const start = end + 4;
    const early = this.headFilled - start;
    this.headFilled = 0;
    this.status = head.status;
    this.keep = !head.close;
    if (accept.includes(head.status) && head.length === into.length && !head.encoded) {
      this.mode = 'body';
      this.filled = this.head.copy(into, 0, start, start + early);
      if (early > into.length) this.keep = false;
      if (this.filled === into.length) this.done(job);
      return;
    }
    this.job = undefined;
    job.settle(undefined, { status: head.status, read: false });
    if (head.length === undefined || head.encoded || head.length > DRAIN_BYTES || early > head.length) return this.destroy();
    this.mode = 'drain';
    this.drainLeft = head.length - early;
    if (this.drainLeft === 0) this.done();
  }

  /** The answer has been read to its end; `job` is the accepted one it was for. */
  private done(job?: Job): void {
    this.job = undefined;
    this.mode = 'idle';
    this.answers++;
    if (!this.keep) this.destroy();
    else this.pool.release(this);
    job?.settle(undefined, { status: this.status, read: true });
  }

  /** Rejects the request with `${what}: ${problem}`, and closes the socket. */
  private fail(problem: string, cause?: Error): void {
    const job = this.job;
    job?.settle(new PreemptdError('ERR_STORE', `${job.what}: ${problem}`, cause && { cause }));
    this.destroy();
  }

  /** Closes the socket; its request, if any, is settled by the caller. */
  destroy(): void {
    this.job = undefined;
    this.mode = 'idle';
    this.headFilled = 0;
    this.socket.destroy();
    this.pool.remove(this);
  }

  private closed(): void {
    const { job, error } = this;
    // A reused connection the server closed as the request went out (its keep-alive ran out): a GET may go again.
    if (job && !this.heard && this.answers > 0 && !job.retried) {
      job.retried = true;
      this.job = undefined;
      this.pool.queue.unshift(job);
    }
    const when = this.mode === 'body' ? `after ${this.filled} of ${job?.request.into.length} body bytes` : 'before the answer came';
    this.fail(`the connection closed ${when}${error ? `: ${error.message}` : ''}`, error);
  }
}

/** The connections to one origin, and the requests waiting for one. */
class Pool {
  readonly all = new Set<Connection>();
  readonly idle: Connection[] = [];
  readonly queue: Job[] = [];
  /** Connections done with an answer, in `idle` from the next turn of the event loop. */
  settling = 0;

  constructor(readonly origin: Pick<BodyRequest, 'protocol' | 'hostname' | 'port'>, readonly options: BodyReaderOptions) {}

  dispatch(): void {
    while (this.queue.length > 0) {
      const retried = this.queue[0]!.retried;
      // A retry takes a new connection: the other pooled ones may be as stale as the last.
      let connection = retried ? undefined : this.idle.pop();
      if (!connection) {
        // One coming free within a turn is worth the wait: a new one costs a handshake.
        if (this.all.size >= this.options.maxSockets || (this.settling > 0 && !retried)) return;
        connection = new Connection(this);
        this.all.add(connection);
      }
      connection.send(this.queue.shift()!);
    }
  }

  /**
   * Into `idle` once libuv's reads of this turn are done: bytes past the answer then find the
   * socket idle (and destroy it) rather than being taken for the head of a request sent first.
   */
  release(connection: Connection): void {
    this.settling++;
    setImmediate(() => {
      this.settling--;
      if (this.all.has(connection)) {
        connection.rest();
        this.idle.push(connection);
      }
      this.dispatch();
    });
  }

  remove(connection: Connection): void {
    if (!this.all.delete(connection)) return;
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
    this.dispatch();
  }
}

export class BodyReader {
  /** By origin: `protocol//hostname:port`. */
  private readonly pools = new Map<string, Pool>();
  private destroyed = false;

  constructor(private readonly options: BodyReaderOptions) {}

  get(request: BodyRequest): Promise<BodyAnswer> {
    const { protocol, hostname, port, signal } = request;
    if (signal.aborted) return Promise.reject(signal.reason);
    const what = `GET ${request.path.split('?')[0]}`;
    if (this.destroyed) return Promise.reject(closedError(what));
    const key = `${protocol}//${hostname}:${port ?? ''}`;
    const pool = this.pools.get(key) ?? new Pool({ protocol, hostname, port }, this.options);
    this.pools.set(key, pool);
    return new Promise((resolve, reject) => {
      const job: Job = {
        request, what, retried: false, connection: undefined,
        settle: (error, answer) => {
          job.settle = () => {};
          signal.removeEventListener('abort', abort);
          return answer ? resolve(answer) : reject(error);
        },
      };
      const abort = () => {
        job.settle(signal.reason);
        const at = pool.queue.indexOf(job);
        if (at !== -1) pool.queue.splice(at, 1);
        else job.connection?.destroy();
      };
      signal.addEventListener('abort', abort, { once: true });
      pool.queue.push(job);
      pool.dispatch();
    });
  }

  /** Closes every socket and rejects every request not answered yet. */
  destroy(): void {
    this.destroyed = true;
    for (const pool of this.pools.values()) {
      for (const job of pool.queue.splice(0)) job.settle(closedError(job.what));
      for (const connection of [...pool.all]) {
        connection.job?.settle(closedError(connection.job.what));
        connection.destroy();
      }
    }
  }
}

const closedError = (what: string) => new PreemptdError('ERR_STORE', `${what}: the body reader was destroyed`);
