import type { KubeClient } from './client.js';

/** The fields of a Node that preemptd reads and changes. */
export interface KubeNode {
  metadata: { name: string; uid: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean; taints?: Taint[]; providerID?: string };
  status?: { conditions?: NodeCondition[] };
}

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** One line of a watch: the changed Node, or an ERROR whose object is a Status (410 Expired). */
export interface NodeWatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeNode | { kind: 'Status'; code?: number; message?: string };
}

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  timeAdded?: string;
}

const nodePath = (name: string): string => `/api/v1/nodes/${encodeURIComponent(name)}`;

export function getNode(client: KubeClient, name: string, signal: AbortSignal): Promise<KubeNode> {
  return client.call({ method: 'GET', path: nodePath(name), needs: { verb: 'get', resource: 'nodes' }, signal });
}

/**
 * Watches one Node from `resourceVersion` until the server ends the stream (after about
 * `timeoutSeconds`) or the signal aborts; bookmarks keep the resourceVersion fresh.
 */
export function watchNode(client: KubeClient, name: string, resourceVersion: string, timeoutSeconds: number, onEvent: (event: NodeWatchEvent) => void, signal: AbortSignal): Promise<void> {
  const query = new URLSearchParams({ fieldSelector: `metadata.name=${name}`, watch: 'true', resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) });
  return client.stream({ method: 'GET', path: `/api/v1/nodes?${query}`, needs: { verb: 'watch', resource: 'nodes' }, signal }, (event) => onEvent(event as NodeWatchEvent));
}

/** A strategic merge patch, as kubectl cordon sends; a resourceVersion in it makes a concurrent change a 409. */
export function patchNode(client: KubeClient, name: string, patch: object, signal: AbortSignal): Promise<KubeNode> {
  return client.call({ method: 'PATCH', path: nodePath(name), body: patch, contentType: 'application/strategic-merge-patch+json', needs: { verb: 'patch', resource: 'nodes' }, signal });
}

/** A core/v1 Event about the Node, in `default` as the kubelet records node events. */
export function recordNodeEvent(client: KubeClient, node: KubeNode, event: { reason: string; message: string; host: string }, signal: AbortSignal): Promise<{ metadata: { name: string } }> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return client.call({
    method: 'POST',
    path: '/api/v1/namespaces/default/events',
    body: {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${node.metadata.name}.`, namespace: 'default' },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: node.metadata.name, uid: node.metadata.uid },
      reason: event.reason,
      message: event.message,
      type: 'Warning',
      source: { component: 'preemptd', host: event.host },
      reportingComponent: 'preemptd',
      reportingInstance: event.host,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    },
    needs: { verb: 'create', resource: 'events' },
    signal,
  });
}

/** Whether this identity may `verb` `resource` (SelfSubjectAccessReview: asks, changes nothing). */
export async function mayI(client: KubeClient, permission: { verb: string; resource: string; group?: string }, signal: AbortSignal): Promise<{ allowed: boolean; reason?: string }> {
  const [resource, subresource] = permission.resource.split('/') as [string, string | undefined];
  const review = await client.call<{ status?: { allowed?: boolean; reason?: string } }>({
    method: 'POST',
    path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: permission.verb, resource, ...(subresource ? { subresource } : {}), group: permission.group ?? '' } } },
    needs: { verb: 'create', resource: 'selfsubjectaccessreviews' },
    signal,
  });
  return { allowed: review.status?.allowed === true, ...(review.status?.reason ? { reason: review.status.reason } : {}) };
}
