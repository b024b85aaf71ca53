import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../../kubernetes/client.js';
import { KubernetesError } from '../../kubernetes/errors.js';
import { getNode, patchNode, recordNodeEvent, type KubeNode, type Taint } from '../../kubernetes/node.js';
import type { StepContext, StepDetail } from '../types.js';
import type { KubernetesOptions } from './options.js';

/** Tries of the read-modify-patch when someone else changes the Node in between (409). */
const CONFLICT_TRIES = 3;

/** The taint this notice puts on: the configured one, its value the notice kind unless set. */
function noticeTaint(options: KubernetesOptions, context: StepContext): Taint | undefined {
  if (!options.taint) return undefined;
  const taint: Taint = { key: options.taint.key, value: options.taint.value ?? context.notice.kind, effect: options.taint.effect };
  return taint.effect === 'NoExecute' ? { ...taint, timeAdded: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } : taint;
}

/**
 * One strategic merge patch with the Node's resourceVersion: taints are a list the API
 * server replaces whole, so the new list is built from the Node as read, and a change by
 * someone else in between is a 409 that makes this read again.
 */
function nodePatch(node: KubeNode, options: KubernetesOptions, taint: Taint | undefined): object {
  const others = (node.spec?.taints ?? []).filter((existing) => !(taint && existing.key === taint.key && existing.effect === taint.effect));
  const spec = { ...(options.cordon ? { unschedulable: true } : {}), ...(taint ? { taints: [...others, taint] } : {}) };
  const metadata = {
    resourceVersion: node.metadata.resourceVersion,
    ...(Object.keys(options.labels).length > 0 ? { labels: options.labels } : {}),
    ...(Object.keys(options.annotations).length > 0 ? { annotations: options.annotations } : {}),
  };
  return { metadata, ...(Object.keys(spec).length > 0 ? { spec } : {}) };
}

async function patchWithRetry(client: KubeClient, name: string, options: KubernetesOptions, taint: Taint | undefined, signal: AbortSignal): Promise<KubeNode> {
  for (let attempt = 1; ; attempt++) {
    const node = await getNode(client, name, signal);
    try {
      return await patchNode(client, name, nodePatch(node, options, taint), signal);
    } catch (error) {
      if (!(error instanceof KubernetesError && error.status === 409) || attempt >= CONFLICT_TRIES) throw error;
      await sleep(50 * attempt, undefined, { signal });
    }
  }
}

export async function applyToNode(client: KubeClient, name: string, options: KubernetesOptions, context: StepContext): Promise<StepDetail> {
  const taint = noticeTaint(options, context);
  const changesNode = options.cordon || taint !== undefined || Object.keys(options.labels).length > 0 || Object.keys(options.annotations).length > 0;
  const node = changesNode ? await patchWithRetry(client, name, options, taint, context.signal) : await getNode(client, name, context.signal);
  if (changesNode) context.log.info({ node: name, cordoned: options.cordon, taint }, 'node changed for the notice');
  const detail: StepDetail = {
    node: name,
    ...(options.cordon ? { cordoned: true } : {}),
    ...(taint ? { taint: `${taint.key}=${taint.value}:${taint.effect}` } : {}),
    ...(Object.keys(options.labels).length > 0 ? { labels: options.labels } : {}),
    ...(Object.keys(options.annotations).length > 0 ? { annotations: Object.keys(options.annotations) } : {}),
  };
  if (!options.event) return detail;
  const { notice } = context;
  const deadline = notice.deadline ? `, deadline ${notice.deadline.toISOString()}` : '';
  const event = await recordNodeEvent(client, node, { reason: 'PreemptdNotice', message: `preemptd: ${notice.kind} notice from ${notice.provider}${deadline}`, host: context.host.hostname }, context.signal);
  return { ...detail, event: event.metadata.name };
}
