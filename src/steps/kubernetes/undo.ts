import { bootId } from '../../lib/boot-id.js';
import type { KubeClient } from '../../kubernetes/client.js';
import type { KubeNode } from '../../kubernetes/node.js';
import type { UndoContext } from '../types.js';
import { patchWithRetry } from './apply.js';
import { readRecord, RECORD_ANNOTATION, type NodeRecord } from './record.js';

/** Takes back what the record says preemptd added, where it is still as preemptd left it. */
function revertPatch(node: KubeNode, record: NodeRecord): object {
  const ours = (current: Record<string, string> | undefined, added: Record<string, string>) =>
    Object.fromEntries(Object.entries(added).filter(([key, value]) => current?.[key] === value).map(([key]) => [key, null]));
  const taints = node.spec?.taints ?? [];
  const kept = taints.filter((taint) => !record.taints.some((added) => added.key === taint.key && added.effect === taint.effect && (added.value ?? '') === (taint.value ?? '')));
  const spec = { ...(record.cordoned && node.spec?.unschedulable ? { unschedulable: null } : {}), ...(kept.length !== taints.length ? { taints: kept } : {}) };
  return {
    metadata: {
      resourceVersion: node.metadata.resourceVersion,
      labels: ours(node.metadata.labels, record.labels),
      annotations: { ...ours(node.metadata.annotations, record.annotations), [RECORD_ANNOTATION]: null },
    },
    ...(Object.keys(spec).length > 0 ? { spec } : {}),
  };
}

/**
 * For a withdrawn notice: drops it from the record, and reverts once no notice it was made
 * for is left. At start-up (no noticeId): reverts a record from an earlier boot.
 */
export async function undoOnNode(client: KubeClient, name: string, context: UndoContext): Promise<void> {
  let reverted = false;
  await patchWithRetry(
    client,
    name,
    (node) => {
      const record = readRecord(node.metadata.annotations);
      if (!record) return undefined;
      if (context.noticeId === undefined) {
        if (record.bootId === bootId()) return undefined;
        reverted = true;
        return revertPatch(node, record);
      }
      if (!record.noticeIds.includes(context.noticeId)) return undefined;
      const remaining = record.noticeIds.filter((id) => id !== context.noticeId);
      reverted = remaining.length === 0;
      if (reverted) return revertPatch(node, record);
      return { metadata: { resourceVersion: node.metadata.resourceVersion, annotations: { [RECORD_ANNOTATION]: JSON.stringify({ ...record, noticeIds: remaining }) } } };
    },
    context.signal,
  );
  if (reverted) context.log.info({ node: name, noticeId: context.noticeId ?? null }, context.noticeId ? 'notice withdrawn: took back what preemptd put on the node' : 'took back what preemptd put on the node before this boot');
}
