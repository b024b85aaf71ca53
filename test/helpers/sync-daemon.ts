import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import { compileConfig } from './config.js';
import type { TestResources } from './resources.js';
import { ScriptedProvider } from './scripted-provider.js';
import { until } from './until.js';

/**
 * A real daemon on a scripted provider with one sync, `ckpt` (`sync` is its settings), past its
 * first metadata read: the syncs start there, as READY=1 does. The metadata URL is loopback
 * and never reached.
 */
export async function startSyncDaemon(
  resources: TestResources,
  stateDir: string,
  sync: Record<string, unknown>,
): Promise<{ daemon: Daemon; provider: ScriptedProvider }> {
  const config = compileConfig(
    { provider: 'aws', metadataUrl: 'http://127.0.0.1:9/', stateDir, server: { enabled: false }, sync: { ckpt: sync } },
    { file: undefined },
  );
  const provider = new ScriptedProvider();
  const daemon = createDaemon({ config, log: silentLogger(), provider });
  void resources.runDaemon(daemon);
  await until(() => provider.watching);
  provider.read();
  await until(() => daemon.syncs.status().length === 1);
  return { daemon, provider };
}

/** Stops `daemon` and waits until it has (the state a restart finds). */
export async function stopDaemon(daemon: Daemon): Promise<void> {
  await daemon.stop();
  await until(() => daemon.state === 'stopped');
}
