import type { KubeClient } from '../../kubernetes/client.js';
import { drainCandidates } from './drain.js';
import type { DrainOptions } from './options.js';

/** The pods a drain of the Node would evict now, in order, then those it would skip and why (read only). */
export async function previewDrain(client: KubeClient, nodeName: string, drain: DrainOptions, hostname: string, signal: AbortSignal): Promise<string[]> {
  const { ordered, skipped } = await drainCandidates(client, nodeName, drain, hostname, signal);
  const name = (pod: (typeof ordered)[number]) => `${pod.metadata.namespace}/${pod.metadata.name}`;
  return [
    ordered.length === 0 ? `node ${nodeName}: no pod to evict now` : `node ${nodeName}: evicts ${ordered.length} pods now, in this order: ${ordered.map(name).join(', ')}`,
    ...(skipped.length === 0 ? [] : [`node ${nodeName}: skips ${skipped.map((pod) => `${pod.pod} (${pod.reason})`).join(', ')}`]),
  ];
}
