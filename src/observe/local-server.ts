import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/types.js';
import type { Daemon } from '../daemon/daemon.js';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import { hostPort } from '../lib/format.js';
import type { Logger } from '../lib/log.js';
import { capConnections } from './connection-cap.js';
import { createMetrics, type DaemonMetrics } from './metrics.js';
import { NoticeBoard } from './notice-board.js';
import { NoticeRoute } from './notice-route.js';
import { StatusTracker } from './plan-status.js';
import { syncView } from './sync-metrics.js';

export interface ServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  daemon: Daemon;
  status: StatusTracker;
  /** What GET /v1/notice answers from. */
  notices: NoticeBoard;
  metrics: DaemonMetrics;
  log: Logger;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:9464. */
  readonly url: string;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  contentType: string;
  body: string;
}

/** One request as a route sees it. */
interface RequestContext {
  params: URLSearchParams;
  /** Aborts when the client goes away. */
  gone: AbortSignal;
  /** Aborts when the server closes. */
  stopping: AbortSignal;
  notices: NoticeRoute;
}

type Route = (options: ServerOptions, request: RequestContext) => Reply | Promise<Reply>;

export const ENDPOINTS = ['/healthz', '/readyz', '/metrics', '/v1/status', '/v1/notice'] as const;

function json(status: number, value: unknown): Reply {
  return { status, contentType: 'application/json; charset=utf-8', body: `${JSON.stringify(value, null, 2)}\n` };
}

function isoOrNull(epochMs: number | null): string | null {
  return epochMs === null ? null : new Date(epochMs).toISOString();
}

/** The daemon's health as /healthz and /v1/status report it. */
function healthBody({ daemon, status }: ServerOptions) {
  const health = daemon.health();
  return {
    status: health.watchAlive ? 'ok' : health.state === 'watching' ? 'stalled' : health.state,
    state: health.state,
    provider: health.provider,
    lastSuccessfulRead: isoOrNull(health.lastSuccessAt),
    lastRead: isoOrNull(health.lastReadAt),
    consecutiveErrors: health.consecutiveErrors,
    stallThresholdMs: health.stallThresholdMs,
    // Each notice source on its own: the cloud's metadata service and, with kubernetes.watchNode, the Node.
    sources: health.sources.map((source) => ({
      provider: source.provider,
      status: source.alive ? (source.consecutiveErrors > 0 ? 'degraded' : 'ok') : 'stalled',
      lastSuccessfulRead: isoOrNull(source.lastSuccessAt),
      lastRead: isoOrNull(source.lastReadAt),
      consecutiveErrors: source.consecutiveErrors,
    })),
    notice: {
      state: health.activeNotices.length > 0 ? 'handling' : 'idle',
      active: health.activeNotices,
      ready: status.readiness().ready,
    },
  };
}

const ROUTES: Record<(typeof ENDPOINTS)[number], Route> = {
  /** 200 while the watch loop completes metadata requests; 503 when stalled, starting or stopping. */
  '/healthz': (options) => json(options.daemon.health().watchAlive ? 200 : 503, healthBody(options)),
  '/readyz': ({ status }) => {
    const readiness = status.readiness();
    return json(readiness.ready ? 200 : 503, readiness);
  },
  '/metrics': async ({ metrics }) => ({ status: 200, contentType: metrics.contentType, body: await metrics.render() }),
  '/v1/status': (options) => {
    const readiness = options.status.readiness();
    return json(200, { ...healthBody(options), readiness, notices: options.status.notices(), syncs: syncView(options.daemon.syncs.status()) });
  },
  /** The current notice (docs/operations.md "Applications can ask"), long-polled with ?wait=30s. */
  '/v1/notice': async (_options, { params, gone, stopping, notices }) => {
    const answer = await notices.answer(params, gone, stopping);
    return answer.status === 204 ? { status: 204, contentType: 'application/json; charset=utf-8', body: '' } : json(answer.status, answer.body);
  },
};

async function respond(
  options: ServerOptions,
  request: http.IncomingMessage,
  response: http.ServerResponse,
  shared: Pick<RequestContext, 'stopping' | 'notices'>,
): Promise<void> {
  // Split by hand: new URL() throws on some targets a client can send (http://[x).
  const target = request.url ?? '/';
  const mark = target.indexOf('?');
  const path = mark === -1 ? target : target.slice(0, mark);
  const query = mark === -1 ? '' : target.slice(mark + 1);
  const route = ROUTES[path as keyof typeof ROUTES] as Route | undefined;
  let reply: Reply;
  if (!route) reply = json(404, { error: `no such endpoint ${path}`, endpoints: ENDPOINTS });
  else if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    reply = json(405, { error: `${request.method} not allowed: ${path} answers GET and HEAD` });
  } else {
    try {
      const gone = new AbortController();
      response.once('close', () => gone.abort());
      reply = await route(options, { ...shared, params: new URLSearchParams(query), gone: gone.signal });
    } catch (error) {
      options.log.error({ path, err: error }, 'local server: request failed');
      reply = json(500, { error: errorMessage(error) });
    }
  }
  response.writeHead(reply.status, {
    'content-type': reply.contentType,
    'content-length': Buffer.byteLength(reply.body),
    'cache-control': 'no-store',
  });
  response.end(request.method === 'HEAD' ? undefined : reply.body);
}

/**
 * The local HTTP server: /healthz, /readyz, /metrics, /v1/status and /v1/notice. It only reads the
 * daemon's state: nothing here can change what the agent does.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  // A probe or scraper that stalls must not hold a socket for long: the timeouts are
  // checked every second (Node's default is 30 s).
  const timeouts = { headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 };
  const stopping = new AbortController();
  const shared = { stopping: stopping.signal, notices: new NoticeRoute(options.notices) };
  const server = http.createServer(timeouts, (request, response) => {
    // The body of a GET is never read; drain it so the connection can be reused.
    request.resume();
    void respond(options, request, response, shared);
  });
  // Slow clients give way to new ones, so a liveness probe always gets in (requests waiting
  // on /v1/notice are held below the cap: MAX_WAITING).
  capConnections(server, 64);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'the address is in use (another preemptd?)' : error.code === 'EACCES' ? 'permission denied' : error.message;
      reject(new PreemptdError('ERR_LISTEN', `cannot listen on ${hostPort(options.host, options.port)}: ${reason}`, { cause: error }));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${hostPort(address.address, address.port)}`;
  return {
    url,
    close: async () => {
      // Waiting /v1/notice requests are answered (503) before their connections close.
      stopping.abort();
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * What `preemptd run` serves for one daemon: metrics and status follow its events, the
 * server answers from them. Returns undefined (after logging why) when the address cannot
 * be had: the agent must still protect the workload without its local server.
 */
export async function serveDaemon(
  daemon: Daemon,
  config: Pick<Config, 'server' | 'readiness' | 'steps'>,
  log: Logger,
  shared: { status?: StatusTracker; notices?: NoticeBoard } = {},
): Promise<RunningServer | undefined> {
  const metrics = createMetrics(daemon, { steps: config.steps });
  const status = shared.status ?? new StatusTracker(daemon, { notReadyOn: config.readiness.notReadyOn });
  const notices = shared.notices ?? new NoticeBoard(daemon);
  const closeStatus = () => {
    if (!shared.status) status.close();
    if (!shared.notices) notices.close();
  };
  let server: RunningServer;
  try {
    server = await startServer({ host: config.server.host, port: config.server.port, daemon, status, notices, metrics, log });
  } catch (error) {
    metrics.close();
    closeStatus();
    log.error({ err: error }, `local server not started (server.listen): ${errorMessage(error)}; the agent runs on without /healthz, /readyz and /metrics`);
    return undefined;
  }
  log.info({ url: server.url, endpoints: ENDPOINTS }, `local server on ${server.url}`);
  return {
    url: server.url,
    close: async () => {
      await server.close();
      metrics.close();
      closeStatus();
    },
  };
}
