import { StepFailure } from '../../lib/errors.js';
import type { KubeClient } from '../../kubernetes/client.js';
import type { StepType } from '../types.js';
import { changesNode, describeKubernetes, kubernetesSchema, type KubernetesOptions } from './options.js';

/** The client loads with the first kubernetes step: an agent without one never imports it. */
async function connect(options: KubernetesOptions): Promise<KubeClient> {
  const [{ resolveAccess }, { KubeClient }] = await Promise.all([import('../../kubernetes/access.js'), import('../../kubernetes/client.js')]);
  return new KubeClient(await resolveAccess(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}));
}

function nodeName(options: KubernetesOptions): string {
  const name = options.node ?? process.env.NODE_NAME;
  if (!name) {
    throw new StepFailure('no Node name: set node: in the step, or NODE_NAME in the pod (env valueFrom fieldRef fieldPath spec.nodeName)');
  }
  return name;
}

/** Turns the client's errors into step failures; the message already names what to fix. */
async function asStepFailure<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const { KubernetesError } = await import('../../kubernetes/errors.js');
    if (error instanceof KubernetesError) throw new StepFailure(error.message, error.status === undefined ? undefined : { status: error.status });
    throw error;
  }
}

/**
 * `kubernetes:` cordons, taints, labels and annotates the Node this agent runs on, records
 * an Event on it and drains its pods (docs/kubernetes.md); undo takes the Node's changes back
 * when the notice is withdrawn.
 * Destructive when it cordons, taints or drains: an advisory notice (a rebalance) runs such a
 * step only when its on: names the kind, so a passing warning does not empty a node. Labels,
 * annotations and the Event only tell: they run for advisory notices too.
 */
export const kubernetesStep = {
  type: 'kubernetes',
  schema: kubernetesSchema,
  destructive: (options) => options.cordon || options.taint !== undefined || options.drain !== undefined,
  // A drain runs until its pods are gone or the plan deadline; without a deadline (an advisory notice) two minutes, AWS's notice.
  defaultTimeoutMs: (options) => (options.drain ? 120_000 : 10_000),
  describe: describeKubernetes,
  async run(options, context) {
    const name = nodeName(options);
    return asStepFailure(async () => {
      const { applyToNode } = await import('./apply.js');
      const client = await connect(options);
      const detail = await applyToNode(client, name, options, context);
      if (!options.drain) return detail;
      const { drainNode } = await import('./drain.js');
      const drained = await drainNode(client, name, options.drain, context);
      const full = { ...detail, drain: drained.counts, pods: drained.pods };
      if (drained.unfinished) throw new StepFailure(`drain of node ${name}: ${drained.unfinished}`, full);
      return full;
    });
  },
  async undo(options, context) {
    const name = options.node ?? process.env.NODE_NAME;
    // Without a name or a change to the Node, run() left nothing there.
    if (!name || !changesNode(options)) return;
    await asStepFailure(async () => {
      const { undoOnNode } = await import('./undo.js');
      await undoOnNode(await connect(options), name, context);
    });
  },
  async preview(options, context) {
    if (!options.drain) return [];
    const name = nodeName(options);
    const drain = options.drain;
    return asStepFailure(async () => {
      const { previewDrain } = await import('./preview.js');
      return previewDrain(await connect(options), name, drain, context.host.hostname, context.signal);
    });
  },
  async check(options, context) {
    const name = options.node ?? process.env.NODE_NAME;
    const what = `Kubernetes Node ${name ?? '(no node: and no NODE_NAME)'}`;
    if (!name) return [{ what, ok: false, reason: 'set node: in the step, or NODE_NAME in the pod (env valueFrom fieldRef fieldPath spec.nodeName)' }];
    try {
      return await asStepFailure(async () => {
        const { checkNodeAccess } = await import('./check.js');
        return checkNodeAccess(await connect(options), name, options, context.signal);
      });
    } catch (error) {
      return [{ what, ok: false, reason: (error as Error).message }];
    }
  },
} satisfies StepType<KubernetesOptions>;
