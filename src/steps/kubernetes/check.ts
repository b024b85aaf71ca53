import type { KubeClient } from '../../kubernetes/client.js';
import { getNode, mayI } from '../../kubernetes/node.js';
import type { CheckResult } from '../types.js';
import { changesNode, type KubernetesOptions } from './options.js';

/** The permissions a step with these options uses. */
function permissionsFor(options: KubernetesOptions): Array<{ verb: string; resource: string; group?: string }> {
  const drain = options.drain
    ? [{ verb: 'list', resource: 'pods' }, { verb: 'get', resource: 'daemonsets', group: 'apps' }, { verb: 'create', resource: 'pods/eviction' }, ...(options.drain.deleteBlockedWithinMs !== undefined ? [{ verb: 'delete', resource: 'pods' }] : [])]
    : [];
  return [{ verb: 'get', resource: 'nodes' }, ...(changesNode(options) ? [{ verb: 'patch', resource: 'nodes' }] : []), ...(options.event ? [{ verb: 'create', resource: 'events' }] : []), ...drain];
}

/** Whether the API answers, the Node exists, and each permission is granted: reads and reviews only. */
export async function checkNodeAccess(client: KubeClient, name: string, options: KubernetesOptions, signal: AbortSignal): Promise<CheckResult[]> {
  const node = await getNode(client, name, signal);
  const results: CheckResult[] = [{ what: `Kubernetes Node ${name}`, ok: true, reason: `found through ${client.access.source} at ${client.access.server}${node.spec?.unschedulable ? ' (already cordoned)' : ''}` }];
  for (const permission of permissionsFor(options)) {
    const review = await mayI(client, permission, signal);
    results.push({
      what: `permission ${permission.verb} ${permission.resource}`,
      ok: review.allowed,
      reason: review.allowed ? 'granted' : `not granted: add verb "${permission.verb}" on "${permission.resource}" to the agent's (Cluster)Role`,
    });
  }
  return results;
}
