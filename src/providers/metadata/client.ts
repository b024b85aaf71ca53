import http from 'node:http';
import { MetadataRequestError } from '../../lib/errors.js';

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
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Metadata bodies are a few hundred bytes; anything this large is garbage, not a notice. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * A minimal HTTP client for the metadata service, used on the poll hot path.
 * Why not got here: at one request per second all day, got's per-request option
 * normalisation and hook machinery cost measurably more CPU than node:http with a
 * keep-alive agent (see bench/idle-cost: the figure is in docs/benchmarks.md).
 * Everything else (webhooks, drains) uses got.
 */
export class MetadataClient {
  readonly baseUrl: URL;
  private readonly agent: http.Agent;

  constructor(baseUrl: string) {
    this.baseUrl = new URL(baseUrl);
    // Requests are sequential per source, but every source (hanging GETs included) and every
    // instance fact may be in flight at once: a slow fact read must never queue a notice read.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16, maxFreeSockets: 4, keepAliveMsecs: 10_000 });
  }

  request(request: MetadataRequest): Promise<MetadataResponse> {
    return new Promise((resolve, reject) => {
      if (request.signal?.aborted) {
        reject(new MetadataRequestError('aborted', 'request aborted'));
        return;
      }
      let settled = false;
      const finish = (error: Error | null, response?: MetadataResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        if (error) {
          outgoing.destroy();
          reject(error);
        } else resolve(response!);
      };
      const onAbort = () => finish(new MetadataRequestError('aborted', 'request aborted'));
      const headers: Record<string, string> = { ...request.headers };
      if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
      const outgoing = http.request(
        {
          protocol: this.baseUrl.protocol,
          hostname: this.baseUrl.hostname,
          port: this.baseUrl.port,
          method: request.method ?? 'GET',
          path: request.path,
          headers,
          agent: this.agent,
        },
        (incoming) => {
          const chunks: Buffer[] = [];
          let size = 0;
          incoming.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) {
              finish(new MetadataRequestError('body_too_large', `response body larger than ${MAX_BODY_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          incoming.on('end', () =>
            finish(null, { status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(chunks).toString('utf8') }),
          );
          incoming.on('error', (error) => finish(classify(error)));
          incoming.on('aborted', () => finish(new MetadataRequestError('connection_reset', 'connection closed mid-response')));
        },
      );
      const timer = setTimeout(
        () => finish(new MetadataRequestError('timeout', `no complete answer within ${request.timeoutMs} ms`)),
        request.timeoutMs,
      );
      request.signal?.addEventListener('abort', onAbort, { once: true });
      outgoing.on('error', (error) => finish(classify(error)));
      outgoing.end(request.body);
    });
  }

  /** Closes idle keep-alive sockets so the process can exit at once. */
  close(): void {
    this.agent.destroy();
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
