import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../../kubernetes/client.js';
import { KubernetesError } from '../../kubernetes/errors.js';
import { getNode, patchNode, recordNodeEvent, type KubeNode, type Taint } from '../../kubernetes/node.js';
import { bootId } from '../../lib/boot-id.js';
import type { StepContext, StepDetail } from '../types.js';
import { changesNode, type KubernetesOptions } from './options.js';
import { mergeRecord, readRecord, RECORD_ANNOTATION } from './record.js';

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
 * someone else in between is a 409 that makes this read again. The record annotation
 * (record.ts) says what was added, for the undo.
 */
function nodePatch(node: KubeNode, options: KubernetesOptions, taint: Taint | undefined, noticeId: string): object {
  const others = (node.spec?.taints ?? []).filter((existing) => !(taint && existing.key === taint.key && existing.effect === taint.effect));
  const spec = { ...(options.cordon ? { unschedulable: true } : {}), ...(taint ? { taints: [...others, taint] } : {}) };
  const record = mergeRecord(readRecord(node.metadata.annotations), {
    noticeIds: [noticeId],
    bootId: bootId(),
    cordoned: options.cordon && node.spec?.unschedulable !== true,
    taints: taint ? [taint] : [],
    labels: options.labels,
    annotations: options.annotations,
  });
  const metadata = {
    resourceVersion: node.metadata.resourceVersion,
    ...(Object.keys(options.labels).length > 0 ? { labels: options.labels } : {}),
    annotations: { ...options.annotations, [RECORD_ANNOTATION]: JSON.stringify(record) },
  };
  return { metadata, ...(Object.keys(spec).length > 0 ? { spec } : {}) };
}

/** Reads the Node and patches it with what `build` makes of it, again after a 409 (someone changed it in between). */
export async function patchWithRetry(client: KubeClient, name: string, build: (node: KubeNode) => object | undefined, signal: AbortSignal): Promise<KubeNode> {
  for (let attempt = 1; ; attempt++) {
    const node = await getNode(client, name, signal);
    const patch = build(node);
    if (!patch) return node;
    try {
      return await patchNode(client, name, patch, signal);
    } catch (error) {
      if (!(error instanceof KubernetesError && error.status === 409) || attempt >= CONFLICT_TRIES) throw error;
      await sleep(50 * attempt, undefined, { signal });
    }
  }
}

export async function applyToNode(client: KubeClient, name: string, options: KubernetesOptions, context: StepContext): Promise<StepDetail> {
  const taint = noticeTaint(options, context);
  const changes = changesNode(options);
  const node = changes ? await patchWithRetry(client, name, (read) => nodePatch(read, options, taint, context.notice.id), context.signal) : await getNode(client, name, context.signal);
  if (changes) context.log.info({ node: name, cordoned: options.cordon, taint }, 'node changed for the notice');
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
