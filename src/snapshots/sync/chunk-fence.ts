import type { ObjectStore } from '../../stores/types.js';
import type { DeleteFence } from '../prune.js';

/**
 * Keeps a sync's own prune, running beside its commits, from deleting a chunk the sync puts
 * meanwhile: a chunk the prune listed as old and unreferenced may be put again by a commit
 * (one found older than CHUNK_REUSE_WINDOW_MS is), and a delete by key would take the new
 * copy. Keys put since the prune started are left out of its batches; a put of a key in the
 * batch being deleted waits until that batch is gone, then writes it again.
 */
export class ChunkFence implements DeleteFence {
  /** Keys put since the running prune started; null when none runs. */
  private putSince: Set<string> | null = null;
  private claimed = new Set<string>();
  private batchGone: Promise<void> = Promise.resolve();
  private endBatch: (() => void) | undefined;

  /** A prune starts: what is put from now on is kept from it. */
  pruneStarted(): void {
    this.putSince = new Set();
  }

  pruneEnded(): void {
    this.putSince = null;
  }

  claim(keys: readonly string[]): string[] {
    const free = keys.filter((key) => !this.putSince?.has(key));
    this.claimed = new Set(free);
    this.batchGone = new Promise((resolve) => (this.endBatch = resolve));
    return free;
  }

  release(): void {
    this.claimed = new Set();
    this.endBatch?.();
    this.endBatch = undefined;
  }

  /** `store` with every put seen by the fence: the store the sync writes through. */
  guard(store: ObjectStore): ObjectStore {
    return {
      ...store,
      put: async (key, parts, options) => {
        this.putSince?.add(key);
        if (this.claimed.has(key)) await this.batchGone;
        return store.put(key, parts, options);
      },
    };
  }
}
