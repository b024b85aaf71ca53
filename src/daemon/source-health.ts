import type { Config } from '../config/types.js';
import type { SourceName } from '../notice/notice.js';
import type { MetadataRead } from '../providers/types.js';
import { stallThresholdMs } from './provider-settings.js';

/** How one notice source (a cloud's metadata service, the own Node) is doing. */
export interface SourceHealth {
  provider: SourceName;
  lastReadAt: number | null;
  lastSuccessAt: number | null;
  consecutiveErrors: number;
  /** False when the source has not completed a request for longer than it ever should. */
  alive: boolean;
  stallThresholdMs: number;
}

type Reads = Pick<SourceHealth, 'lastReadAt' | 'lastSuccessAt' | 'consecutiveErrors'>;

/**
 * The reads of each source the daemon watches, kept apart: one source answering must not
 * hide another that fails or stalls (a cloud polled every second beside a Node watch).
 */
export class SourceHealthBook {
  private readonly sources = new Map<SourceName, Reads>();
  private main: SourceName | null = null;
  private watchStartedAt: number | null = null;

  constructor(private readonly now: () => number) {}

  /** The watch starts with these sources; the first is the provider's own. */
  watching(names: readonly SourceName[]): void {
    this.main = names[0] ?? null;
    for (const name of names) this.sources.set(name, { lastReadAt: null, lastSuccessAt: null, consecutiveErrors: 0 });
    this.watchStartedAt = this.now();
  }

  record(read: MetadataRead): void {
    const name = read.provider ?? this.main;
    const entry = name === null ? undefined : this.sources.get(name);
    if (!entry) return;
    const at = this.now();
    entry.lastReadAt = at;
    if (read.ok) {
      entry.lastSuccessAt = at;
      entry.consecutiveErrors = 0;
    } else entry.consecutiveErrors += 1;
  }

  /**
   * Each source, and all of them at once: the latest read and success of any, the longest
   * run of errors, alive only while every source is. `watching` false: none is alive.
   */
  report(config: Config, watching: boolean): SourcesHealth {
    const sources = [...this.sources].map(([provider, reads]): SourceHealth => {
      const threshold = stallThresholdMs(provider, config);
      const lastSign = reads.lastReadAt ?? this.watchStartedAt;
      return { provider, ...reads, alive: watching && lastSign !== null && this.now() - lastSign <= threshold, stallThresholdMs: threshold };
    });
    return {
      sources,
      lastReadAt: latest(sources.map((source) => source.lastReadAt)),
      lastSuccessAt: latest(sources.map((source) => source.lastSuccessAt)),
      consecutiveErrors: Math.max(0, ...sources.map((source) => source.consecutiveErrors)),
      watchAlive: sources.length > 0 && sources.every((source) => source.alive),
      stallThresholdMs: Math.max(stallThresholdMs(this.main, config), ...sources.map((source) => source.stallThresholdMs)),
    };
  }
}

export interface SourcesHealth extends Pick<SourceHealth, 'lastReadAt' | 'lastSuccessAt' | 'consecutiveErrors' | 'stallThresholdMs'> {
  sources: SourceHealth[];
  /** False when a source has not completed a request for longer than it ever should. */
  watchAlive: boolean;
}

function latest(times: Array<number | null>): number | null {
  const known = times.filter((time) => time !== null);
  return known.length === 0 ? null : Math.max(...known);
}
