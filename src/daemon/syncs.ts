import type { Config } from '../config/types.js';
import type { HostFacts } from '../lib/host.js';
import type { Logger } from '../lib/log.js';
import type { SyncEngine, SyncStatus } from '../snapshots/sync/engine.js';

export type { SyncStatus };

/**
 * The daemon's background syncs (top-level `sync:`): started once the agent watches, the
 * engine loaded only when a sync is configured; their prunes stopped when a notice's handling
 * starts (none starts until it ends); flushed on an advisory notice; stopped with
 * the agent. What they report is read by observe/ (status and metrics).
 */
export class DaemonSyncs {
  private readonly stop = new AbortController();
  private engines: SyncEngine[] = [];
  private loops: Promise<void>[] = [];
  private starting: Promise<void> | undefined;

  /** Starts every configured sync (once); a sync that cannot open its store is logged and left out. */
  start(config: Config, host: HostFacts, log: Logger, inNotice: () => boolean): Promise<void> {
    this.starting ??= this.open(config, host, log, inNotice);
    return this.starting;
  }

  private async open(config: Config, host: HostFacts, log: Logger, inNotice: () => boolean): Promise<void> {
    const entries = Object.entries(config.sync);
    if (entries.length === 0 || this.stop.signal.aborted) return;
    const [{ SyncEngine }, { registerSync }] = await Promise.all([import('../snapshots/sync/engine.js'), import('../snapshots/sync/registry.js')]);
    for (const [name, entry] of entries) {
      if (this.stop.signal.aborted) return;
      try {
        const engine = await SyncEngine.open(name, entry, { stateDir: config.stateDir, host, log, signal: this.stop.signal, inNotice });
        const unregister = registerSync(engine);
        this.engines.push(engine);
        this.loops.push(
          engine.run(this.stop.signal).finally(() => {
            unregister();
            return engine.close();
          }),
        );
      } catch (error) {
        log.error({ sync: name, err: error }, 'could not start the sync; a notice-time snapshot tied to it fails');
      }
    }
  }

  /** A notice's handling starts: every sync's prune stops now, leaving the network to its steps. */
  noticeStarted(): void {
    for (const engine of this.engines) engine.stopPrune('a notice is being handled');
  }

  /** An advisory notice: every sync lifts its cap and stores what it has now. */
  flush(): void {
    for (const engine of this.engines) engine.flush();
  }

  status(): SyncStatus[] {
    return this.engines.map((engine) => engine.status());
  }

  /** Stops every sync: transfers are cut, what completed stays recorded. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.starting;
    await Promise.allSettled(this.loops);
  }
}
