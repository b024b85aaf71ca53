import type { InstanceFacts, Notice, SourceName } from '../../src/notice/notice.js';
import type { MetadataRead, Provider, ProviderEvent, WatchContext } from '../../src/providers/types.js';

/**
 * A provider the test drives by hand: its watch loop reads only when told (`read`), and
 * yields exactly the events the test hands it (`emit`). One that is never told to read is
 * a stalled watch loop.
 */
export class ScriptedProvider implements Provider {
  readonly name = 'aws' as const;
  /** Set to pose as a watch that merges sources (the Node beside the cloud); reads then name theirs. */
  sources?: readonly SourceName[];
  private readonly queue: ProviderEvent[] = [];
  private wake: (() => void) | undefined;
  private context: WatchContext | undefined;

  instanceFacts(): Promise<InstanceFacts> {
    return Promise.resolve({ id: 'i-scripted' });
  }

  /** Reports one metadata request, as a real watch loop does after each request. */
  read(read: Partial<MetadataRead> = {}): void {
    if (!this.context) throw new Error('the watch has not started yet');
    this.context.onRead({ source: 'spot/instance-action', ok: true, ms: 2, status: 404, ...read });
  }

  emit(event: ProviderEvent): void {
    this.queue.push(event);
    this.wake?.();
  }

  notice(notice: Notice): void {
    this.emit({ type: 'notice', notice });
  }

  get watching(): boolean {
    return this.context !== undefined;
  }

  async *watch(context: WatchContext): AsyncGenerator<ProviderEvent> {
    this.context = context;
    while (!context.signal.aborted) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        context.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }
}


/**
 * A provider that reports one metadata read and then watches quietly until stopped. To a
 * watchdog, whose clock moves on without further reads, it is a hung watch loop.
 */
export function quietProvider(): Provider {
  return {
    name: 'aws',
    instanceFacts: async () => ({}),
    async *watch(context: WatchContext) {
      context.onRead({ source: 'spot/instance-action', ok: true, ms: 1, status: 404 });
      await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
    },
  };
}
