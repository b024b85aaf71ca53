/** Objects by resource, one resourceVersion counter, and the event history watches replay from. */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  generateName?: string;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEntry {
  resourceVersion: number;
  resource: string;
  type: WatchEventType;
  object: KubeObject;
}

export interface Watcher {
  resource: string;
  matches: (object: KubeObject) => boolean;
  response: ServerResponse;
}

const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ''}/${name}`;

export class ObjectStore {
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: HistoryEntry[] = [];
  readonly watchers = new Set<Watcher>();
  private revision = 1;
  /** Watches from a resourceVersion below this one are told 410 Expired. */
  compactedRevision = 1;

  constructor(private readonly historyLimit: number) {}

  get resourceVersion(): string {
    return String(this.revision);
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(resource)?.get(keyOf(namespace, name));
  }

  list(resource: string, namespace?: string): KubeObject[] {
    const all = [...(this.objects.get(resource)?.values() ?? [])];
    return (namespace === undefined ? all : all.filter((object) => object.metadata.namespace === namespace)).sort((a, b) =>
      keyOf(a.metadata.namespace, a.metadata.name).localeCompare(keyOf(b.metadata.namespace, b.metadata.name)),
    );
  }

  /** Stores a new object: uid, creationTimestamp and a fresh resourceVersion, as the API server fills them. */
  create(resource: string, object: KubeObject): KubeObject {
    const stored = structuredClone(object);
    stored.metadata.uid ??= randomUUID();
    stored.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (!this.objects.has(resource)) this.objects.set(resource, new Map());
    this.objects.get(resource)!.set(keyOf(stored.metadata.namespace, stored.metadata.name), stored);
    return this.record(resource, 'ADDED', stored);
  }

  replace(resource: string, object: KubeObject): KubeObject {
    this.objects.get(resource)!.set(keyOf(object.metadata.namespace, object.metadata.name), object);
    return this.record(resource, 'MODIFIED', object);
  }

  remove(resource: string, object: KubeObject): KubeObject {
    this.objects.get(resource)?.delete(keyOf(object.metadata.namespace, object.metadata.name));
    return this.record(resource, 'DELETED', object);
  }

  private record(resource: string, type: WatchEventType, object: KubeObject): KubeObject {
    this.revision += 1;
    object.metadata.resourceVersion = String(this.revision);
    const entry = { resourceVersion: this.revision, resource, type, object: structuredClone(object) };
    this.history.push(entry);
    while (this.history.length > this.historyLimit) this.compactedRevision = this.history.shift()!.resourceVersion;
    for (const watcher of this.watchers) if (watcher.resource === resource) sendIfMatching(watcher, entry);
    return object;
  }

  /** Events after `resourceVersion` for a watch that resumes from it. */
  since(resource: string, resourceVersion: number): HistoryEntry[] {
    return this.history.filter((entry) => entry.resource === resource && entry.resourceVersion > resourceVersion);
  }

  /** Forgets the history, as etcd compaction does: a watch from any older resourceVersion gets 410. */
  compact(): void {
    this.history.length = 0;
    this.compactedRevision = this.revision;
  }
}

export function sendIfMatching(watcher: Watcher, entry: { type: string; object: KubeObject }): void {
  if (watcher.matches(entry.object)) watcher.response.write(`${JSON.stringify({ type: entry.type, object: entry.object })}\n`);
}
