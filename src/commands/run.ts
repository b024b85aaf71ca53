import type { ConfigFlags } from '../cli.js';
import { loadConfig, overridesFromFlags } from '../config/load.js';
import { createDaemon } from '../daemon.js';
import { createLogger } from '../log.js';
import { attachSystemdNotifier } from '../systemd/notifier.js';

/** Loads the config the way every command does: file, then PREEMPTD_* env (applied by loadConfig), then flags. */
export async function loadConfigFromFlags(args: ConfigFlags) {
  return loadConfig({
    file: args.config,
    env: process.env,
    overrides: overridesFromFlags(args.set ?? [], {
      provider: args.provider,
      metadataUrl: args.metadataUrl,
      pollInterval: args.pollInterval,
      stateDir: args.stateDir,
      logLevel: args.logLevel,
    }),
  });
}

export async function runCommand(args: ConfigFlags): Promise<void> {
  const config = await loadConfigFromFlags(args);
  const log = createLogger({ level: config.logLevel });
  const daemon = createDaemon({ config, log });
  const systemd = attachSystemdNotifier({ daemon, log });
  const stop = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'stopping');
    void daemon.stop();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  log.info({ file: config.file, provider: config.provider, steps: config.steps.map((step) => step.name) }, 'preemptd starting');
  if (config.steps.length === 0) log.warn('the config has no steps: notices will be detected and logged, and nothing else will run');
  await daemon.run();
  await systemd?.close();
  log.flush();
}
