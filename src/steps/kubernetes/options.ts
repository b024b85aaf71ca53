import { z } from 'zod';
import { absolutePath, positiveDuration } from '../../config/fields.js';
import { formatDuration } from '../../lib/duration.js';
import { parseLabelSelector, type LabelSelector } from './selector.js';

/** The project's own prefix for what it puts on a Node. */
export const DEFAULT_TAINT_KEY = 'preemptd.io/notice';

export interface TaintOptions {
  key: string;
  /** Undefined: the notice's kind (`terminate`, `rebalance`, ...). */
  value: string | undefined;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface DrainOptions {
  /** Label selectors whose pods are asked to leave first, in this order; the rest after. */
  first: LabelSelector[];
  /** Label selectors whose pods stay. */
  exclude: LabelSelector[];
  /** When this much time is left before the deadline, pods a budget still refuses are deleted; undefined: never. */
  deleteBlockedWithinMs: number | undefined;
}

/** What a kubernetes step does to its Node, in this order: one patch, then the Event, then the drain. */
export interface KubernetesOptions {
  /** The Node's name; undefined: the NODE_NAME env (the downward API's spec.nodeName). */
  node: string | undefined;
  /** A kubeconfig file; undefined: the pod's service account. */
  kubeconfig: string | undefined;
  cordon: boolean;
  taint: TaintOptions | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  event: boolean;
  drain: DrainOptions | undefined;
}

// Kubernetes' qualified names (label and taint keys) and label values.
const NAME = '([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)';
const QUALIFIED_NAME = new RegExp(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?${NAME}$`);
const LABEL_VALUE = new RegExp(`^(${NAME})?$`);

const qualifiedName = (what: string) =>
  z.string().regex(QUALIFIED_NAME, { message: `expected a ${what} such as preemptd.io/notice: an optional DNS prefix and /, then up to 63 letters, digits, - _ . (starting and ending alphanumeric)` });
const labelValue = z.string().regex(LABEL_VALUE, { message: 'expected a label value: up to 63 letters, digits, - _ . (starting and ending alphanumeric), or empty' });

/** Parses the drain's label selectors; a bad one is an issue at its path (inside the drain union, zod would hide it). */
function selectors(texts: string[], path: Array<string | number>, ctx: z.RefinementCtx): LabelSelector[] {
  return texts.flatMap((text, index) => {
    const parsed = parseLabelSelector(text);
    if (!('error' in parsed)) return [parsed];
    ctx.addIssue({ code: 'custom', message: parsed.error, path: [...path, index] });
    return [];
  });
}

const drainSchema = z.strictObject({
  first: z.array(z.string()).default([]),
  exclude: z.array(z.string()).default([]),
  deleteBlockedWithin: positiveDuration().optional(),
});

const taintSchema = z.strictObject({
  key: qualifiedName('taint key').default(DEFAULT_TAINT_KEY),
  value: labelValue.optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'], { message: 'expected NoSchedule, PreferNoSchedule or NoExecute' }).default('NoSchedule'),
});

export const kubernetesSchema = z
  .strictObject({
    node: z.string().min(1, { message: 'expected the Node name, or leave node out to read NODE_NAME' }).optional(),
    kubeconfig: absolutePath().optional(),
    cordon: z.boolean({ message: 'expected true or false' }).default(false),
    taint: z.union([z.boolean(), taintSchema], { message: 'expected true (the default taint) or { key, value, effect }' }).default(false),
    labels: z.record(qualifiedName('label key'), labelValue).default({}),
    annotations: z.record(qualifiedName('annotation key'), z.string()).default({}),
    event: z.boolean({ message: 'expected true or false' }).default(true),
    drain: z.union([z.boolean(), drainSchema], { message: 'expected true or { first, exclude, deleteBlockedWithin }' }).default(false),
  })
  .transform(
    (raw, ctx): KubernetesOptions => ({
      node: raw.node,
      kubeconfig: raw.kubeconfig,
      cordon: raw.cordon,
      taint: raw.taint === false ? undefined : raw.taint === true ? { key: DEFAULT_TAINT_KEY, value: undefined, effect: 'NoSchedule' } : { key: raw.taint.key, value: raw.taint.value, effect: raw.taint.effect },
      labels: raw.labels,
      annotations: raw.annotations,
      event: raw.event,
      drain:
        raw.drain === false
          ? undefined
          : raw.drain === true
            ? { first: [], exclude: [], deleteBlockedWithinMs: undefined }
            : {
                first: selectors(raw.drain.first, ['drain', 'first'], ctx),
                exclude: selectors(raw.drain.exclude, ['drain', 'exclude'], ctx),
                deleteBlockedWithinMs: raw.drain.deleteBlockedWithin,
              },
    }),
  )
  .refine((options) => options.cordon || options.taint || Object.keys(options.labels).length > 0 || Object.keys(options.annotations).length > 0 || options.event || options.drain, {
    message: 'expected something to do: cordon, taint, labels, annotations, event or drain',
  })
  // kubectl drain cordons first for the same reason: on a schedulable Node the evicted pods' replacements may land right back.
  .refine((options) => !options.drain || options.cordon || (options.taint && options.taint.effect !== 'PreferNoSchedule'), {
    message: 'drain needs cordon: true (or a NoSchedule/NoExecute taint), or the evicted pods may be scheduled back onto this node',
    path: ['drain'],
  });

/** Whether the step changes the Node (an Event alone does not). */
export function changesNode(options: KubernetesOptions): boolean {
  return options.cordon || options.taint !== undefined || Object.keys(options.labels).length > 0 || Object.keys(options.annotations).length > 0;
}

/** `cordon node $NODE_NAME, taint it preemptd.io/notice=<kind>:NoSchedule, ...` for dry runs. */
export function describeKubernetes(options: KubernetesOptions): string {
  const node = options.node ?? '$NODE_NAME';
  const actions = [
    ...(options.cordon ? ['cordon it'] : []),
    ...(options.taint ? [`taint it ${options.taint.key}=${options.taint.value ?? '<notice kind>'}:${options.taint.effect}`] : []),
    ...(Object.keys(options.labels).length > 0 ? [`label it ${Object.entries(options.labels).map(([key, value]) => `${key}=${value}`).join(', ')}`] : []),
    ...(Object.keys(options.annotations).length > 0 ? [`annotate it ${Object.keys(options.annotations).join(', ')}`] : []),
    ...(options.event ? ['record an Event on it'] : []),
    ...(options.drain ? [describeDrain(options.drain)] : []),
  ];
  return `node ${node} (${options.kubeconfig ? `kubeconfig ${options.kubeconfig}` : 'in-cluster service account'}): ${actions.join(', ')}`;
}

/** The drain in a dry run: the pods are known only to the API, so the rules and the order. */
function describeDrain(drain: DrainOptions): string {
  const order = drain.first.length > 0 ? `first pods matching ${drain.first.map((rule) => `"${rule.text}"`).join(', then ')}, then the rest` : 'all at once';
  const excluded = drain.exclude.length > 0 ? `, pods matching ${drain.exclude.map((rule) => `"${rule.text}"`).join(' or ')}` : '';
  const deleted = drain.deleteBlockedWithinMs === undefined ? '' : `; pods a budget still refuses ${formatDuration(drain.deleteBlockedWithinMs)} before the deadline are deleted`;
  return `drain it: evict (Eviction API, retried while a PodDisruptionBudget refuses) its pods ${order}, except DaemonSet pods, mirror pods, this agent's own pod${excluded}; each pod's grace period cut to end before the deadline${deleted}`;
}
