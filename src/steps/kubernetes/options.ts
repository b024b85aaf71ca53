import { z } from 'zod';
import { absolutePath } from '../../config/fields.js';

/** The project's own prefix for what it puts on a Node. */
export const DEFAULT_TAINT_KEY = 'preemptd.io/notice';

export interface TaintOptions {
  key: string;
  /** Undefined: the notice's kind (`terminate`, `rebalance`, ...). */
  value: string | undefined;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** What a kubernetes step does to its Node, in this order: one patch, then the Event. */
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
}

// Kubernetes' qualified names (label and taint keys) and label values.
const NAME = '([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)';
const QUALIFIED_NAME = new RegExp(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?${NAME}$`);
const LABEL_VALUE = new RegExp(`^(${NAME})?$`);

const qualifiedName = (what: string) =>
  z.string().regex(QUALIFIED_NAME, { message: `expected a ${what} such as preemptd.io/notice: an optional DNS prefix and /, then up to 63 letters, digits, - _ . (starting and ending alphanumeric)` });
const labelValue = z.string().regex(LABEL_VALUE, { message: 'expected a label value: up to 63 letters, digits, - _ . (starting and ending alphanumeric), or empty' });

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
  })
  .transform(
    (raw): KubernetesOptions => ({
      node: raw.node,
      kubeconfig: raw.kubeconfig,
      cordon: raw.cordon,
      taint: raw.taint === false ? undefined : raw.taint === true ? { key: DEFAULT_TAINT_KEY, value: undefined, effect: 'NoSchedule' } : { key: raw.taint.key, value: raw.taint.value, effect: raw.taint.effect },
      labels: raw.labels,
      annotations: raw.annotations,
      event: raw.event,
    }),
  )
  .refine((options) => options.cordon || options.taint || Object.keys(options.labels).length > 0 || Object.keys(options.annotations).length > 0 || options.event, {
    message: 'expected something to do: cordon, taint, labels, annotations or event',
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
  ];
  return `node ${node} (${options.kubeconfig ? `kubeconfig ${options.kubeconfig}` : 'in-cluster service account'}): ${actions.join(', ')}`;
}
