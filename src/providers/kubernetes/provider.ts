import { backoffDelay, METADATA_BACKOFF, sleep } from '../../lib/backoff.js';
import { bootId } from '../../lib/boot-id.js';
import { PreemptdError } from '../../lib/errors.js';
import { resolveAccess } from '../../kubernetes/access.js';
import { KubeClient } from '../../kubernetes/client.js';
import { getNode, watchNode, type KubeNode, type NodeWatchEvent } from '../../kubernetes/node.js';
import { noticeId, type InstanceFacts, type Notice } from '../../notice/notice.js';
import type { NodeSignal } from '../../config/types.js';
import { SourceReport } from '../metadata/source-report.js';
import type { Provider, ProviderEvent, WatchContext } from '../types.js';
import { effectiveSignals, matchSignals } from './signals.js';
import { NODE_WATCH_SECONDS } from './watch-timing.js';

/** A watch the server has not ended this long after its timeout is given up on. */
const WATCH_SLACK_MS = 15_000;
/**
 * The notice raised when the watched Node object is deleted and no signal had raised one:
 * whoever deletes a Node (Karpenter, the cloud's node controller, a scale-down) is about to
 * remove the machine, and nothing says when; 30 s is the shortest window we know of.
 */
export const NODE_DELETED = { name: 'node-deleted', kind: 'terminate', deadlineMs: 30_000 } as const;

export interface KubernetesSourceOptions {
  node: string | null;
  kubeconfig: string | null;
  signals: readonly NodeSignal[];
  env?: NodeJS.ProcessEnv;
  bootId?: string;
}

/** The source name in reads and /healthz. */
const sourceOf = (node: string) => `kubernetes node ${node}`;

/**
 * The own Node as the notice source: GET it, then WATCH it from that resourceVersion,
 * listing again on 410 Gone. A configured taint, label or condition that appears is a
 * notice; one that goes away withdraws it. API errors are reported (degraded /healthz),
 * backed off and retried, never thrown.
 */
export class KubernetesProvider implements Provider {
  readonly name = 'kubernetes';
  private readonly node: string;
  private readonly signals: NodeSignal[];
  private client: KubeClient | undefined;

  constructor(private readonly options: KubernetesSourceOptions) {
    const node = options.node ?? (options.env ?? process.env).NODE_NAME;
    if (!node) {
      throw new PreemptdError('ERR_USAGE', 'provider kubernetes needs the Node\'s name: set kubernetes.node in the config, or NODE_NAME from the downward API (fieldRef: spec.nodeName)');
    }
    this.node = node;
    this.signals = effectiveSignals(options.signals);
  }

  private async kubeClient(): Promise<KubeClient> {
    this.client ??= new KubeClient(await resolveAccess({ ...(this.options.kubeconfig ? { kubeconfig: this.options.kubeconfig } : {}), ...(this.options.env ? { env: this.options.env } : {}) }));
    return this.client;
  }

  async instanceFacts(signal: AbortSignal): Promise<InstanceFacts> {
    const node = await getNode(await this.kubeClient(), this.node, signal);
    const labels = node.metadata.labels ?? {};
    const facts: InstanceFacts = { name: this.node, hostname: labels['kubernetes.io/hostname'] ?? this.node };
    const id = node.spec?.providerID;
    const type = labels['node.kubernetes.io/instance-type'];
    const zone = labels['topology.kubernetes.io/zone'];
    const region = labels['topology.kubernetes.io/region'];
    return { ...facts, ...(id ? { id } : {}), ...(type ? { type } : {}), ...(zone ? { zone } : {}), ...(region ? { region } : {}) };
  }

  async *watch(context: WatchContext): AsyncGenerator<ProviderEvent> {
    const { signal } = context;
    const report = new SourceReport(sourceOf(this.node), context);
    const shown = new Map<string, Notice>();
    const occurrences = new Map<string, number>();
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      const started = performance.now();
      try {
        const client = await this.kubeClient();
        if (resourceVersion === undefined) {
          const node = await getNode(client, this.node, signal);
          report.ok(performance.now() - started, 200);
          resourceVersion = node.metadata.resourceVersion;
          yield* this.changes(node, shown, occurrences);
        }
        const stream = this.follow(client, resourceVersion, signal);
        for await (const event of stream) {
          if (event.type === 'ERROR') {
            const status = event.object as { code?: number; message?: string };
            if (status.code === 410) {
              context.log.info({ source: sourceOf(this.node), resourceVersion }, `${sourceOf(this.node)}: the watch's resourceVersion is too old (410 Gone); listing again`);
              resourceVersion = undefined;
              break;
            }
            throw new PreemptdError('ERR_METADATA_HTTP', `the Kubernetes API ended the watch of Node ${this.node}: ${status.code ?? ''} ${status.message ?? ''}`.trim());
          }
          const node = event.object as KubeNode;
          resourceVersion = node.metadata.resourceVersion;
          if (event.type === 'BOOKMARK') continue;
          report.ok(performance.now() - started, 200);
          if (event.type === 'DELETED') yield* this.deleted(shown, occurrences, context);
          else yield* this.changes(node, shown, occurrences);
        }
        // The server ended the watch on its timeout: the connection worked all along.
        if (resourceVersion !== undefined) report.ok(performance.now() - started, 200);
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        failures = report.fail(asReadError(error), performance.now() - started);
        await sleep(backoffDelay(failures, METADATA_BACKOFF), signal);
      }
    }
  }

  /** The watch's events, as they come; ends when the server ends the stream; throws when it fails. */
  private async *follow(client: KubeClient, resourceVersion: string, signal: AbortSignal): AsyncGenerator<NodeWatchEvent> {
    const pending: NodeWatchEvent[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    let failure: unknown;
    const limit = AbortSignal.any([signal, AbortSignal.timeout(NODE_WATCH_SECONDS * 1000 + WATCH_SLACK_MS)]);
    void watchNode(client, this.node, resourceVersion, NODE_WATCH_SECONDS, (event) => {
      pending.push(event);
      wake?.();
    }, limit).then(
      () => (ended = true),
      (error: unknown) => {
        ended = true;
        // A watch the server kept open past its timeout is only started again.
        if (!limit.aborted || signal.aborted) failure = error;
      },
    ).finally(() => wake?.());
    while (true) {
      while (pending.length > 0) yield pending.shift()!;
      if (ended) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (pending.length > 0 || ended) resolve();
      });
    }
    if (failure !== undefined) throw failure;
  }

  /** Notices for signals that appeared, withdrawals for those that went away. */
  private *changes(node: KubeNode, shown: Map<string, Notice>, occurrences: Map<string, number>): Generator<ProviderEvent> {
    const now = new Date();
    const present = new Set<string>();
    for (const { signal, since, evidence } of matchSignals(node, this.signals)) {
      present.add(signal.name);
      if (shown.has(signal.name)) continue;
      yield this.raise(signal, since, now, evidence, shown, occurrences);
    }
    for (const [name, notice] of shown) {
      if (present.has(name)) continue;
      shown.delete(name);
      yield { type: 'withdrawn', noticeId: notice.id, reason: `the ${name} signal is gone from Node ${this.node}` };
    }
  }

  /**
   * The Node object is gone: the node is going away. A notice a signal raised stands (its
   * signal did not go away; the Node did); without one, a `node-deleted` terminate notice.
   * Should the Node come back (the kubelet registers it again), the next change withdraws it.
   */
  private *deleted(shown: Map<string, Notice>, occurrences: Map<string, number>, context: WatchContext): Generator<ProviderEvent> {
    const standing = [...shown.keys()];
    const message = `${sourceOf(this.node)}: the Node object was deleted (the node is going away)`;
    if (standing.length > 0) {
      context.log.warn({ source: sourceOf(this.node), notices: standing }, `${message}; the notice already raised for ${standing.join(', ')} stands`);
      return;
    }
    context.log.warn({ source: sourceOf(this.node) }, `${message}; raising a ${NODE_DELETED.kind} notice`);
    yield this.raise(NODE_DELETED, undefined, new Date(), { deleted: true }, shown, occurrences);
  }

  /**
   * The notice for one appearance of a signal. Its identity holds the time the Node gives
   * for the signal (a taint's timeAdded, a condition's lastTransitionTime), or else how many
   * times this watch has seen it appear: a signal withdrawn and raised again is a new notice.
   */
  private raise(
    signal: Pick<NodeSignal, 'name' | 'kind' | 'deadlineMs'>,
    since: Date | undefined,
    now: Date,
    evidence: unknown,
    shown: Map<string, Notice>,
    occurrences: Map<string, number>,
  ): ProviderEvent {
    const count = (occurrences.get(signal.name) ?? 0) + 1;
    occurrences.set(signal.name, count);
    const occurrence = since === undefined ? `#${count}` : since.toISOString();
    const notice: Notice = {
      id: noticeId('kubernetes', signal.kind, `${this.options.bootId ?? bootId()}\0${this.node}\0${signal.name}\0${occurrence}`),
      provider: 'kubernetes',
      kind: signal.kind,
      deadline: signal.deadlineMs === null ? null : new Date((since ?? now).getTime() + signal.deadlineMs),
      detectedAt: now,
      instance: { name: this.node },
      raw: { node: this.node, signal: signal.name, ...(evidence as object) },
      reasons: [signal.name],
    };
    shown.set(signal.name, notice);
    return { type: 'notice', notice };
  }
}

/** A Kubernetes failure as a read error: its message names what to fix. */
function asReadError(error: unknown): unknown {
  if (error instanceof PreemptdError) return error;
  return new PreemptdError('ERR_METADATA_HTTP', (error as Error).message);
}
