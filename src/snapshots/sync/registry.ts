import type { SyncEngine } from './engine.js';

/**
 * The syncs the daemon runs, by name: a snapshot step tied to a sync (`sync: <name>`) finds
 * its engine here. Holds only types until the daemon starts a sync, so steps load nothing.
 */
const running = new Map<string, SyncEngine>();

/** Makes `engine` findable; the returned function takes it out again. */
export function registerSync(engine: SyncEngine): () => void {
  running.set(engine.name, engine);
  return () => {
    if (running.get(engine.name) === engine) running.delete(engine.name);
  };
}

export function runningSync(name: string): SyncEngine | undefined {
  return running.get(name);
}
