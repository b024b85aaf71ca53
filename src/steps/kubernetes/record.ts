import type { Taint } from '../../kubernetes/node.js';

/**
 * The annotation on the Node that says what preemptd added there and for which notices, so
 * an undo takes back exactly that: a cordon that was already there, a taint whose value
 * someone changed, a label someone set again to another value stay as they are.
 */
export const RECORD_ANNOTATION = 'preemptd.io/added';

export interface NodeRecord {
  /** The notices the changes were made for; the undo waits for the last one to be withdrawn. */
  noticeIds: string[];
  /** The kernel boot id when they were made: a later boot clears them at start-up. */
  bootId: string;
  /** True only when preemptd cordoned a Node that was schedulable. */
  cordoned: boolean;
  taints: Taint[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function readRecord(annotations: Record<string, string> | undefined): NodeRecord | undefined {
  const text = annotations?.[RECORD_ANNOTATION];
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<NodeRecord>;
    return { noticeIds: parsed.noticeIds ?? [], bootId: parsed.bootId ?? '', cordoned: parsed.cordoned === true, taints: parsed.taints ?? [], labels: parsed.labels ?? {}, annotations: parsed.annotations ?? {} };
  } catch {
    return undefined;
  }
}

/** Adds this notice's changes to what an earlier notice of this boot recorded. */
export function mergeRecord(previous: NodeRecord | undefined, added: NodeRecord): NodeRecord {
  if (!previous || previous.bootId !== added.bootId) return added;
  const sameTaint = (a: Taint, b: Taint) => a.key === b.key && a.effect === b.effect;
  return {
    noticeIds: [...new Set([...previous.noticeIds, ...added.noticeIds])],
    bootId: added.bootId,
    cordoned: previous.cordoned || added.cordoned,
    taints: [...previous.taints.filter((taint) => !added.taints.some((other) => sameTaint(taint, other))), ...added.taints],
    labels: { ...previous.labels, ...added.labels },
    annotations: { ...previous.annotations, ...added.annotations },
  };
}
