import type { KubeClient } from './client.js';
import { KubernetesError } from './errors.js';

/** The fields of a Pod that a drain reads. */
export interface KubePod {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }>;
    deletionTimestamp?: string;
  };
  spec?: { terminationGracePeriodSeconds?: number };
  status?: { phase?: string };
}

/** `policy/v1`, or `policy/v1beta1` on a server older than 1.22. */
export type EvictionVersion = 'policy/v1' | 'policy/v1beta1';

const podPath = (pod: KubePod): string => `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}`;

/** Every pod bound to the Node, in all namespaces. */
export async function listNodePods(client: KubeClient, nodeName: string, signal: AbortSignal): Promise<KubePod[]> {
  const selector = encodeURIComponent(`spec.nodeName=${nodeName}`);
  const list = await client.call<{ items?: KubePod[] }>({ method: 'GET', path: `/api/v1/pods?fieldSelector=${selector}`, needs: { verb: 'list', resource: 'pods' }, signal });
  return list.items ?? [];
}

/** Which Eviction version the server serves, from the pods/eviction entry of its core/v1 discovery (as kubectl reads it). */
export async function evictionVersion(client: KubeClient, signal: AbortSignal): Promise<EvictionVersion> {
  const core = await client.call<{ resources?: Array<{ name: string; version?: string }> }>({ method: 'GET', path: '/api/v1', needs: { verb: 'get', resource: 'discovery' }, signal });
  const eviction = core.resources?.find((resource) => resource.name === 'pods/eviction');
  if (!eviction) throw new KubernetesError('the Kubernetes API serves no pods/eviction subresource (Eviction API): cannot drain through it');
  return eviction.version === 'v1beta1' ? 'policy/v1beta1' : 'policy/v1';
}

/** POST pods/NAME/eviction; rejects with the API's 429 (a budget refuses), 500 (several budgets), 404 (already gone). */
export async function evictPod(client: KubeClient, pod: KubePod, version: EvictionVersion, gracePeriodSeconds: number | undefined, signal: AbortSignal): Promise<void> {
  await client.call({
    method: 'POST',
    path: `${podPath(pod)}/eviction`,
    body: {
      apiVersion: version,
      kind: 'Eviction',
      metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace },
      ...(gracePeriodSeconds === undefined ? {} : { deleteOptions: { gracePeriodSeconds } }),
    },
    needs: { verb: 'create', resource: 'pods/eviction' },
    signal,
  });
}

/** DELETE the pod, bypassing its budgets; the uid precondition spares a new pod of the same name. */
export async function deletePod(client: KubeClient, pod: KubePod, gracePeriodSeconds: number | undefined, signal: AbortSignal): Promise<void> {
  await client.call({
    method: 'DELETE',
    path: podPath(pod),
    body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: pod.metadata.uid }, ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }) },
    needs: { verb: 'delete', resource: 'pods' },
    signal,
  });
}

/** Whether the DaemonSet exists; false on 404 (its pods are orphans, as kubectl drain calls them). */
export async function daemonSetExists(client: KubeClient, namespace: string, name: string, signal: AbortSignal): Promise<boolean> {
  try {
    await client.call({ method: 'GET', path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets/${encodeURIComponent(name)}`, needs: { verb: 'get', resource: 'daemonsets' }, signal });
    return true;
  } catch (error) {
    if (error instanceof KubernetesError && error.status === 404) return false;
    throw error;
  }
}
