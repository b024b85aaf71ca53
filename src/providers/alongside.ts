import type { SourceName } from '../notice/notice.js';
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
    watch: (context) => mergeLoops(context.signal, sources.map((source) => sourceLoop(source, context))),
    ...(cloud.acknowledge ? { acknowledge: cloud.acknowledge.bind(cloud) } : {}),
  };
}

function sourceLoop(source: Provider, context: WatchContext): SourceLoop {
  const provider: SourceName = source.name;
  return async (emit: (event: ProviderEvent) => void, signal: AbortSignal) => {
    for await (const event of source.watch({ signal, log: context.log, onRead: (read) => context.onRead({ ...read, provider }) })) emit(event);
  };
}
