import type { Notice, SourceName } from '../notice/notice.js';
import type { Logger } from '../lib/log.js';
import { mergeLoops, type SourceLoop } from './metadata/merge-loops.js';
import type { Provider, ProviderEvent, WatchContext } from './types.js';

/**
 * A cloud's provider with the own Node watched beside it (`kubernetes.watchNode`): both
 * feed one watch, each notice keeps its own source's id (so a withdrawal from one source
 * never touches the other's notice), and every read names the source it came from so
 * health is reported per source. The instance facts and acknowledgements are the cloud's.
 */
export function withNodeSource(cloud: Provider, node: Provider): Provider {
  const sources = [cloud, node];
  return {
    name: cloud.name,
    sources: sources.map((source) => source.name),
    instanceFacts: (signal) => cloud.instanceFacts(signal),
    watch: (context) => {
      const oneEnding = new OneNoticePerKind(context.log);
      return mergeLoops(context.signal, sources.map((source) => sourceLoop(source, context, oneEnding)));
    },
    ...(cloud.acknowledge ? { acknowledge: cloud.acknowledge.bind(cloud) } : {}),
  };
}

function sourceLoop(source: Provider, context: WatchContext, oneEnding: OneNoticePerKind): SourceLoop {
  const provider: SourceName = source.name;
  return async (emit: (event: ProviderEvent) => void, signal: AbortSignal) => {
    for await (const event of source.watch({ signal, log: context.log, onRead: (read) => context.onRead({ ...read, provider }) })) {
      for (const passed of oneEnding.pass(provider, event)) emit(passed);
    }
  };
}

/**
 * One machine, one plan per interruption: the cloud and the Node often show the same one (an
 * AWS terminate and Karpenter's disrupted taint). A notice of a kind the other source already
 * shows is held back, not run twice; it goes on only if that other notice is withdrawn while
 * it still stands.
 */
class OneNoticePerKind {
  private readonly shown = new Map<string, { source: SourceName; notice: Notice }>();
  private readonly held = new Map<string, { source: SourceName; notice: Notice }>();

  constructor(private readonly log: Logger) {}

  *pass(source: SourceName, event: ProviderEvent): Generator<ProviderEvent> {
    if (event.type === 'notice') {
      const { notice } = event;
      if (this.shown.has(notice.id)) {
        this.shown.set(notice.id, { source, notice });
        yield event;
        return;
      }
      const other = [...this.shown.values()].find((entry) => entry.source !== source && entry.notice.kind === notice.kind);
      if (!other) {
        this.shown.set(notice.id, { source, notice });
        yield event;
        return;
      }
      if (!this.held.has(notice.id)) {
        this.log.info({ noticeId: notice.id, sameAs: other.notice.id }, `${source} shows the ${notice.kind} that ${other.source} already raised: one plan runs for both`);
      }
      this.held.set(notice.id, { source, notice });
      return;
    }
    if (this.held.delete(event.noticeId)) return;
    const withdrawn = this.shown.get(event.noticeId);
    if (!withdrawn) return yield event;
    this.shown.delete(event.noticeId);
    yield event;
    const waiting = [...this.held].find(([, entry]) => entry.notice.kind === withdrawn.notice.kind);
    if (!waiting) return;
    this.held.delete(waiting[0]);
    this.shown.set(waiting[0], waiting[1]);
    yield { type: 'notice', notice: waiting[1].notice };
  }
}
