/**
 * A Kubernetes API server on loopback for tests and benches, faithful enough that the real
 * `kubectl` gets, cordons, taints, labels and drains against it: discovery, nodes (get, list,
 * watch from a resourceVersion with 410 Expired past compaction, strategic-merge/merge/JSON
 * patch, update with conflicts), pods (list by field and label selector, delete with grace and
 * a termination that takes time), evictions (policy/v1 and v1beta1) under PodDisruptionBudgets,
 * events, daemonsets, SelfSubjectAccessReview, bearer-token authentication (401) and RBAC
 * denials (403) with the real Status bodies. HTTPS with a self-signed certificate for
 * 127.0.0.1 (kubectl sends a bearer token only over TLS), or plain HTTP when asked.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { PatchError, jsonPatch, mergePatch, strategicMergePatch } from './kube-api/patch.js';
import { PodLifecycle } from './kube-api/pods.js';
import { discovery, parseResourcePath, resourceDefs, type ResourceDef, type ResourcePath } from './kube-api/resources.js';
import { parseSelector } from './kube-api/selectors.js';
import { ApiError, notFound, statusBody } from './kube-api/status.js';
import { ObjectStore, sendIfMatching, type KubeObject } from './kube-api/store.js';
import { toTable, wantsTable } from './kube-api/tables.js';

export type { KubeObject } from './kube-api/store.js';

export interface KubeApiServerOptions {
  /** Bearer token → user name. When given, a request without one of them gets 401. */
  tokens?: Record<string, string>;
  /** Eviction API versions served (default both); `['v1beta1']` is a pre-1.22 server. */
  evictionVersions?: Array<'v1' | 'v1beta1'>;
  /** Watch events kept for resuming; a watch from before them gets 410 Expired. */
  historyLimit?: number;
  /** Plain HTTP instead of HTTPS (kubectl then sends no bearer token). */
  plainHttp?: boolean;
}

let certificate: Promise<{ key: string; cert: string }> | undefined;

/** One self-signed certificate for 127.0.0.1 per test process, made by openssl. */
function selfSignedCertificate(): Promise<{ key: string; cert: string }> {
  certificate ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kube-api-cert-'));
    try {
      await promisify(execFile)('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'basicConstraints=critical,CA:TRUE',
      ]);
      return { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert: await readFile(join(dir, 'cert.pem'), 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return certificate;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

export interface PodInit {
  name: string;
  namespace?: string;
  nodeName: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The owning controller, e.g. `{ kind: 'ReplicaSet', name: 'web-1' }`; a DaemonSet must exist (addDaemonSet). */
  owner?: { kind: string; name: string; apiVersion?: string };
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  terminationGracePeriodSeconds?: number;
  /** How long the pod's process takes to stop once deleted (capped by its grace); default 0. */
  stopsAfterMs?: number;
}

const ACCEPTED_PATCHES = ['application/strategic-merge-patch+json', 'application/merge-patch+json', 'application/json-patch+json'];

export class KubeApiServer {
  readonly requests: RecordedRequest[] = [];
  /** Added before every answer: an API server that is slow. */
  latencyMs = 0;
  /** When set, the delay before answering this request instead (slow evictions only, say). */
  latencyOf: ((request: RecordedRequest) => number) | undefined;
  private readonly defs: ResourceDef[];
  private readonly evictionVersions: readonly string[];
  readonly store: ObjectStore;
  private readonly pods: PodLifecycle;
  private readonly denied = new Set<string>();
  private tokens: Record<string, string> | undefined;
  private server!: Server;
  url = '';
  /** The server certificate (PEM), which is also its CA: what a kubeconfig or /var/run/secrets/.../ca.crt holds. */
  caCertificate = '';

  constructor(private readonly options: KubeApiServerOptions = {}) {
    this.evictionVersions = options.evictionVersions ?? ['v1', 'v1beta1'];
    this.defs = resourceDefs(this.evictionVersions);
    this.store = new ObjectStore(options.historyLimit ?? 1000);
    this.pods = new PodLifecycle(this.store);
    this.tokens = options.tokens;
    this.store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' }, status: { phase: 'Active' } });
  }

  async start(): Promise<this> {
    const handler = (request: IncomingMessage, response: ServerResponse): void => void this.handle(request, response);
    const tls = this.options.plainHttp ? undefined : await selfSignedCertificate();
    this.caCertificate = tls?.cert ?? '';
    this.server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const { port } = this.server.address() as AddressInfo;
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return this;
  }

  async close(): Promise<void> {
    this.pods.stop();
    for (const watcher of this.store.watchers) watcher.response.end();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  /** Replaces the accepted tokens (a rotated service-account token, an expired one). */
  setTokens(tokens: Record<string, string> | undefined): void {
    this.tokens = tokens;
  }

  /** Denies `verb` on `resource` (`nodes`, `pods/eviction`, ...) to every user, as a missing RBAC rule does. */
  deny(verb: string, resource: string): void {
    this.denied.add(`${verb} ${resource}`);
  }

  allow(verb: string, resource: string): void {
    this.denied.delete(`${verb} ${resource}`);
  }

  /** Forgets the watch history: a watch from an older resourceVersion now gets 410 Expired. */
  compactHistory(): void {
    this.store.compact();
  }

  /** Ends every open watch, as an API server restart or a load balancer timeout does. */
  dropWatches(): void {
    for (const watcher of this.store.watchers) watcher.response.end();
    this.store.watchers.clear();
  }

  addNode(name: string, init: { labels?: Record<string, string>; taints?: object[]; unschedulable?: boolean } = {}): KubeObject {
    return this.store.create('nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, ...init.labels } },
      spec: { ...(init.taints ? { taints: init.taints } : {}), ...(init.unschedulable ? { unschedulable: true } : {}) },
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
        addresses: [{ type: 'Hostname', address: name }],
        nodeInfo: { kubeletVersion: 'v1.32.0', osImage: 'test', architecture: 'amd64', operatingSystem: 'linux' },
      },
    });
  }

  addDaemonSet(namespace: string, name: string): KubeObject {
    return this.store.create('daemonsets', { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name, namespace }, spec: { selector: { matchLabels: { app: name } } } });
  }

  addPdb(namespace: string, name: string, spec: { selector: object; minAvailable?: number | string; maxUnavailable?: number | string }): KubeObject {
    return this.store.create('poddisruptionbudgets', { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name, namespace }, spec });
  }

  addPod(init: PodInit): KubeObject {
    const namespace = init.namespace ?? 'default';
    const owner = init.owner && (init.owner.kind === 'DaemonSet' ? this.store.get('daemonsets', namespace, init.owner.name) : undefined);
    const pod = this.store.create('pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: init.name,
        namespace,
        ...(init.labels ? { labels: init.labels } : {}),
        ...(init.annotations ? { annotations: init.annotations } : {}),
        ...(init.owner
          ? { ownerReferences: [{ apiVersion: init.owner.apiVersion ?? 'apps/v1', kind: init.owner.kind, name: init.owner.name, uid: owner?.metadata.uid ?? `uid-${init.owner.name}`, controller: true, blockOwnerDeletion: true }] }
          : {}),
      },
      spec: { nodeName: init.nodeName, terminationGracePeriodSeconds: init.terminationGracePeriodSeconds ?? 30, containers: [{ name: 'main', image: 'busybox' }] },
      status: { phase: init.phase ?? 'Running', conditions: [{ type: 'Ready', status: init.phase === 'Running' || !init.phase ? 'True' : 'False' }] },
    });
    this.pods.stopsAfterMs.set(pod.metadata.uid!, init.stopsAfterMs ?? 0);
    return pod;
  }

  node(name: string): KubeObject | undefined {
    return this.store.get('nodes', undefined, name);
  }

  pod(namespace: string, name: string): KubeObject | undefined {
    return this.store.get('pods', namespace, name);
  }

  events(namespace = 'default'): KubeObject[] {
    return this.store.list('events', namespace);
  }

  /** Writes a kubeconfig for this server (JSON, which kubectl reads as YAML) and returns its path. */
  async writeKubeconfig(path: string, user: { token?: string } = {}): Promise<string> {
    const cluster = { server: this.url, ...(this.caCertificate ? { 'certificate-authority-data': Buffer.from(this.caCertificate).toString('base64') } : {}) };
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster }],
      users: [{ name: 'fake', user: user.token ? { token: user.token } : {} }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    };
    await writeFile(path, JSON.stringify(config, null, 2));
    return path;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    try {
      const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (raw && contentType && contentType !== 'application/json' && !contentType.endsWith('+json')) {
        throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, ${ACCEPTED_PATCHES.join(', ')}`);
      }
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        throw new ApiError(400, 'BadRequest', `the body of the request was in an unknown format - accepted media types include: application/json`);
      }
      const recorded = { method: request.method ?? 'GET', path: url.pathname, query: url.searchParams, contentType: request.headers['content-type'], authorization: request.headers.authorization, body };
      this.requests.push(recorded);
      const latency = this.latencyOf?.(recorded) ?? this.latencyMs;
      if (latency > 0) await sleep(latency, undefined, { ref: false });
      const user = this.authenticate(request.headers.authorization);
      const document = request.method === 'GET' ? discovery(url.pathname, this.defs, this.evictionVersions, this.url.replace(/^\w+:\/\//, '')) : undefined;
      if (document) return send(response, 200, document);
      if (url.pathname === '/healthz' || url.pathname === '/readyz' || url.pathname === '/livez') {
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      const target = parseResourcePath(url.pathname, this.defs);
      if (!target) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
      const verb = verbOf(request.method ?? 'GET', target, url.searchParams);
      this.authorize(user, verb, target);
      await this.serve(verb, target, url.searchParams, request, response, body, user);
    } catch (error) {
      if (error instanceof ApiError) return send(response, error.code, error.body);
      if (error instanceof PatchError) return send(response, 422, statusBody(422, 'Invalid', error.message));
      send(response, 500, statusBody(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`));
    }
  }

  private authenticate(authorization: string | undefined): string {
    if (!this.tokens) return 'system:anonymous';
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    const user = token === undefined ? undefined : this.tokens[token];
    if (user === undefined) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    return user;
  }

  private isDenied(verb: string, resource: string): boolean {
    return this.denied.has(`${verb} ${resource}`) || this.denied.has(`* ${resource}`);
  }

  private authorize(user: string, verb: string, target: ResourcePath): void {
    if (target.def.name === 'selfsubjectaccessreviews') return;
    const resource = target.subresource ? `${target.def.name}/${target.subresource}` : target.def.name;
    if (!this.isDenied(verb, resource)) return;
    const what = target.name ? `${target.def.name}${target.def.group ? `.${target.def.group}` : ''} "${target.name}"` : `${target.def.name}${target.def.group ? `.${target.def.group}` : ''}`;
    const scope = target.namespace !== undefined ? `in the namespace "${target.namespace}"` : 'at the cluster scope';
    throw new ApiError(403, 'Forbidden', `${what} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${target.def.group}" ${scope}`, {
      ...(target.name ? { name: target.name } : {}),
      ...(target.def.group ? { group: target.def.group } : {}),
      kind: target.def.name,
    });
  }

  private existing(target: ResourcePath): KubeObject {
    const object = this.store.get(target.def.name, target.namespace, target.name!);
    if (!object) throw notFound(target.def.name, target.name!, target.def.group);
    return object;
  }

  /** What a GET returns: the stored object, with a budget's status computed as the disruption controller would. */
  private view(def: ResourceDef, object: KubeObject): KubeObject {
    if (def.name !== 'poddisruptionbudgets') return object;
    return { ...object, status: { ...this.pods.budgetStatus(object), observedGeneration: 1 } };
  }

  private async serve(verb: string, target: ResourcePath, query: URLSearchParams, request: IncomingMessage, response: ServerResponse, body: unknown, user: string): Promise<void> {
    const { def } = target;
    if (target.subresource === 'eviction' && def.name === 'pods' && verb === 'create') return send(response, 201, this.evict(target, body));
    if (target.subresource) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
    switch (verb) {
      case 'get': {
        const object = this.view(def, this.existing(target));
        if (wantsTable(request.headers.accept)) return send(response, 200, toTable(def.name, [object], query.get('includeObject') ?? undefined, this.store.resourceVersion));
        return send(response, 200, object);
      }
      case 'list':
      case 'watch': {
        const fields = parseSelector(query.get('fieldSelector') ?? undefined);
        const labels = parseSelector(query.get('labelSelector') ?? undefined);
        const matches = (object: KubeObject): boolean =>
          (target.namespace === undefined || object.metadata.namespace === target.namespace) && labels(object.metadata.labels ?? {}) && fields(fieldValues(object));
        if (verb === 'watch') return this.watch(def, matches, query, response);
        const items = this.store.list(def.name, target.namespace).filter(matches).map((object) => this.view(def, object));
        if (wantsTable(request.headers.accept)) return send(response, 200, toTable(def.name, items, query.get('includeObject') ?? undefined, this.store.resourceVersion));
        return send(response, 200, { kind: `${def.kind}List`, apiVersion: apiVersionOf(def, target.version), metadata: { resourceVersion: this.store.resourceVersion }, items });
      }
      case 'create':
        if (def.name === 'selfsubjectaccessreviews') return send(response, 201, this.review(body, user));
        return send(response, 201, this.create(target, body));
      case 'patch':
        return send(response, 200, this.patch(target, request.headers['content-type'], body));
      case 'update':
        return send(response, 200, this.update(target, body));
      case 'delete': {
        const object = this.existing(target);
        const grace = (body as { gracePeriodSeconds?: number } | undefined)?.gracePeriodSeconds ?? numberParam(query, 'gracePeriodSeconds');
        return send(response, 200, def.name === 'pods' ? this.pods.delete(object, grace) : this.store.remove(def.name, object));
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    }
  }

  private watch(def: ResourceDef, matches: (object: KubeObject) => boolean, query: URLSearchParams, response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const watcher = { resource: def.name, matches, response };
    const from = query.get('resourceVersion');
    if (from && from !== '0' && Number(from) < this.store.compactedRevision) {
      const expired = statusBody(410, 'Expired', `too old resource version: ${from} (${this.store.compactedRevision})`);
      response.end(`${JSON.stringify({ type: 'ERROR', object: expired })}\n`);
      return;
    }
    if (from && from !== '0') for (const entry of this.store.since(def.name, Number(from))) sendIfMatching(watcher, entry);
    else for (const object of this.store.list(def.name)) sendIfMatching(watcher, { type: 'ADDED', object });
    this.store.watchers.add(watcher);
    const timeout = numberParam(query, 'timeoutSeconds');
    const timer = timeout !== undefined ? setTimeout(() => response.end(), timeout * 1000) : undefined;
    response.on('close', () => {
      clearTimeout(timer);
      this.store.watchers.delete(watcher);
    });
  }

  private evict(target: ResourcePath, body: unknown): object {
    const eviction = body as { apiVersion?: string; metadata?: { name?: string }; deleteOptions?: { gracePeriodSeconds?: number } } | undefined;
    const version = eviction?.apiVersion?.replace(/^policy\//, '');
    if (!eviction || !version || !this.evictionVersions.includes(version)) {
      throw new ApiError(400, 'BadRequest', `no kind "Eviction" is registered for version "${eviction?.apiVersion ?? ''}"`);
    }
    if (eviction.metadata?.name !== target.name) throw new ApiError(400, 'BadRequest', 'name in URL does not match name in Eviction object');
    return this.pods.evict(this.existing(target), eviction.deleteOptions?.gracePeriodSeconds);
  }

  private create(target: ResourcePath, body: unknown): KubeObject {
    const object = structuredClone(body) as KubeObject;
    if (!object?.metadata) throw new ApiError(422, 'Invalid', `${target.def.kind} is invalid: metadata: Required value`);
    if (!object.metadata.name && object.metadata.generateName) object.metadata.name = `${object.metadata.generateName}${Math.random().toString(36).slice(2, 7)}`;
    if (!object.metadata.name) throw new ApiError(422, 'Invalid', `${target.def.kind} is invalid: metadata.name: Required value: name or generateName is required`);
    if (target.def.namespaced) object.metadata.namespace = target.namespace ?? 'default';
    if (this.store.get(target.def.name, object.metadata.namespace, object.metadata.name)) {
      throw new ApiError(409, 'AlreadyExists', `${target.def.name} "${object.metadata.name}" already exists`, { name: object.metadata.name, kind: target.def.name });
    }
    return this.store.create(target.def.name, { ...object, apiVersion: apiVersionOf(target.def, target.version), kind: target.def.kind });
  }

  private patch(target: ResourcePath, contentType: string | undefined, body: unknown): KubeObject {
    const current = this.existing(target);
    const type = (contentType ?? '').split(';')[0]!.trim();
    if (!ACCEPTED_PATCHES.includes(type)) {
      throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${ACCEPTED_PATCHES.join(', ')}`);
    }
    const patched = (type === 'application/json-patch+json' ? jsonPatch(current, body) : type === 'application/merge-patch+json' ? mergePatch(current, body) : strategicMergePatch(current, body)) as KubeObject;
    return this.commit(target, current, patched);
  }

  private update(target: ResourcePath, body: unknown): KubeObject {
    return this.commit(target, this.existing(target), structuredClone(body) as KubeObject);
  }

  /** Stores a changed object: identity fields stay, and a stale resourceVersion is a 409 Conflict. */
  private commit(target: ResourcePath, current: KubeObject, changed: KubeObject): KubeObject {
    const { name, namespace, uid, creationTimestamp, resourceVersion } = current.metadata;
    if (changed.metadata?.name !== name) throw new ApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    if (changed.metadata.resourceVersion !== undefined && changed.metadata.resourceVersion !== resourceVersion) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${target.def.name} "${name}": the object has been modified; please apply your changes to the latest version and try again`, {
        name,
        kind: target.def.name,
      });
    }
    const stored = { ...changed, metadata: { ...changed.metadata, name, ...(namespace !== undefined ? { namespace } : {}), uid, creationTimestamp } };
    return this.store.replace(target.def.name, stored);
  }

  private review(body: unknown, user: string): object {
    const attributes = (body as { spec?: { resourceAttributes?: { verb?: string; resource?: string; subresource?: string; group?: string } } })?.spec?.resourceAttributes;
    if (!attributes?.verb || !attributes.resource) throw new ApiError(422, 'Invalid', 'SelfSubjectAccessReview is invalid: spec.resourceAttributes: Required value');
    const resource = attributes.subresource ? `${attributes.resource}/${attributes.subresource}` : attributes.resource;
    const allowed = !this.isDenied(attributes.verb, resource);
    return {
      ...(body as object),
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      metadata: { creationTimestamp: null },
      status: allowed ? { allowed: true, reason: `RBAC: allowed for User "${user}"` } : { allowed: false },
    };
  }
}

function apiVersionOf(def: ResourceDef, version: string): string {
  return def.group ? `${def.group}/${version}` : version;
}

function numberParam(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  return value === null ? undefined : Number(value);
}

function verbOf(method: string, target: ResourcePath, query: URLSearchParams): string {
  const watching = query.get('watch') === 'true' || query.get('watch') === '1';
  switch (method) {
    case 'GET': return target.name ? 'get' : watching ? 'watch' : 'list';
    case 'POST': return 'create';
    case 'PATCH': return 'patch';
    case 'PUT': return 'update';
    case 'DELETE': return target.name ? 'delete' : 'deletecollection';
    default: return method.toLowerCase();
  }
}

/** The values a field selector compares against (metadata.name, spec.nodeName, status.phase, ...). */
function fieldValues(object: KubeObject): Record<string, string | undefined> {
  const values: Record<string, string | undefined> = {};
  const walk = (value: unknown, path: string): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) for (const [key, inner] of Object.entries(value)) walk(inner, path ? `${path}.${key}` : key);
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') values[path] = String(value);
  };
  walk(object, '');
  return values;
}

function send(response: ServerResponse, code: number, body: object): void {
  response.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Starts a fake API server on 127.0.0.1; close it with `server.close()`. */
export function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  return new KubeApiServer(options).start();
}
