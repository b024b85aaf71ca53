import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeAccess } from './access.js';
import { KubernetesError } from './errors.js';

/**
 * A thin JSON client over node:https rather than @kubernetes/client-node: measured here
 * (Node 24, client-node 2.0.1), importing client-node took 436–822 ms and raised RSS from
 * 43 MB to 130 MB; node:https takes 20 ms and 8 MB, and preemptd needs a handful of calls.
 */

/** What a call needs the permission for, so a 403 names the RBAC rule to add. */
export interface Permission {
  verb: string;
  /** `nodes`, `events`, `pods/eviction`. */
  resource: string;
}

export interface KubeCall {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  contentType?: string;
  needs: Permission;
  signal: AbortSignal;
}

/** A response body larger than this is refused: a Node is a few kB, the pods of a full node (110) a few MB. */
const BODY_LIMIT_BYTES = 16 * 1024 * 1024;

interface Status {
  kind?: string;
  message?: string;
  reason?: string;
  details?: { causes?: Array<{ message?: string }> };
}

function failure(access: KubeAccess, call: KubeCall, status: number, body: Status | undefined): KubernetesError {
  const said = body?.kind === 'Status' && body.message ? body.message : `HTTP ${status}`;
  if (status === 401) return new KubernetesError(`the Kubernetes API refused the credentials from ${access.source} (401 Unauthorized): the token is missing, wrong or expired`, status);
  if (status === 403) {
    return new KubernetesError(`${said} (403 Forbidden): grant the agent's service account "${call.needs.verb}" on "${call.needs.resource}" in a (Cluster)Role`, status);
  }
  const causes = (body?.details?.causes ?? []).flatMap((cause) => (cause.message ? [cause.message] : []));
  return new KubernetesError(`${call.method} ${call.path} on the Kubernetes API: ${status} ${body?.reason ?? ''} ${said}`.replace(/\s+/g, ' ').trim(), status, causes);
}

export class KubeClient {
  readonly access: KubeAccess;
  constructor(access: KubeAccess) {
    this.access = access;
  }

  /** One JSON call; rejects with a KubernetesError that names what to fix. */
  async call<T>(call: KubeCall): Promise<T> {
    const { status, text } = await this.open(call, readBody);
    return parseAnswer<T>(this.access, call, status, text);
  }

  /**
   * A watch: hands each JSON line of the answer to `onEvent` as it arrives and resolves
   * when the server ends the stream. A refused watch rejects like `call`.
   */
  async stream(call: KubeCall, onEvent: (event: unknown) => void): Promise<void> {
    const { status, text } = await this.open(call, (response, req) => (response.statusCode === 200 ? readLines(response, req, call, onEvent) : readBody(response, req, call)));
    if (status !== 200) parseAnswer(this.access, call, status, text);
  }

  private async open(call: KubeCall, read: (response: IncomingMessage, req: ClientRequest, call: KubeCall) => Promise<string>): Promise<{ status: number; text: string }> {
    const token = await this.access.token();
    const url = new URL(call.path, `${this.access.server}/`);
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'preemptd' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      headers['content-type'] = call.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        url,
        {
          method: call.method,
          headers,
          signal: call.signal,
          ...(this.access.ca ? { ca: this.access.ca } : {}),
          ...(this.access.clientCertificate ? { cert: this.access.clientCertificate, key: this.access.clientKey } : {}),
          rejectUnauthorized: this.access.insecureSkipTlsVerify !== true,
        },
        (response) => {
          read(response, req, call).then((text) => resolve({ status: response.statusCode ?? 0, text }), reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    }).catch((error: unknown) => {
      if (error instanceof KubernetesError) throw error;
      if (call.signal.aborted) throw new KubernetesError(`the Kubernetes API at ${this.access.server} did not answer ${call.method} ${call.path} before the step's deadline`);
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new KubernetesError(`the Kubernetes API at ${this.access.server} is unreachable (${code})`);
    });
  }
}

function parseAnswer<T>(access: KubeAccess, call: KubeCall, status: number, text: string): T {
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    throw new KubernetesError(`the Kubernetes API answered ${call.method} ${call.path} with ${status} and a body that is not JSON`, status);
  }
  if (status < 200 || status > 299) throw failure(access, call, status, body as Status | undefined);
  return body as T;
}

function readBody(response: IncomingMessage, req: ClientRequest, call: KubeCall): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT_BYTES) req.destroy(new KubernetesError(`the Kubernetes API answered ${call.method} ${call.path} with more than ${BODY_LIMIT_BYTES} bytes`));
      else chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
  });
}

/** Splits a watch stream into JSON lines; one line over the body limit ends it. */
function readLines(response: IncomingMessage, req: ClientRequest, call: KubeCall, onEvent: (event: unknown) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    let pending = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (!line) continue;
        let event: unknown;
        try {
          event = JSON.parse(line);
        } catch {
          req.destroy(new KubernetesError(`the Kubernetes API sent a watch event for ${call.path} that is not JSON`));
          return;
        }
        onEvent(event);
      }
      if (pending.length > BODY_LIMIT_BYTES) req.destroy(new KubernetesError(`the Kubernetes API sent a watch event for ${call.path} over ${BODY_LIMIT_BYTES} bytes`));
    });
    response.on('end', () => resolve(''));
    response.on('error', reject);
  });
}
