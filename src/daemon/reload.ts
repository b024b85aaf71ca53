import { configChanges, keepRestartSettings } from '../config/changes.js';
import type { Config } from '../config/types.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

export type ReloadOutcome = 'applied' | 'unchanged' | 'refused';

export interface ReloaderDeps {
  /** Loads and validates the config again, the same way as at start. */
  load(): Promise<Config>;
  /** Puts a new config into effect (daemon.reload, log level); settings read only at start are already the running ones. */
  apply(config: Config): void;
  log: Logger;
  current: Config;
}

/**
 * SIGHUP handling: loads the config again and applies it, or refuses it and keeps the old
 * one. Reloads never overlap: one asked for while another runs waits for it.
 */
export class ConfigReloader {
  private currentConfig: Config;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ReloaderDeps) {
    this.currentConfig = deps.current;
  }

  get current(): Config {
    return this.currentConfig;
  }

  reload(): Promise<ReloadOutcome> {
    const next = this.queue.then(
      () => this.reloadNow(),
      () => this.reloadNow(),
    );
    this.queue = next;
    return next;
  }

  private async reloadNow(): Promise<ReloadOutcome> {
    const { log } = this.deps;
    const file = this.currentConfig.file ?? '(no file)';
    let config: Config;
    try {
      config = await this.deps.load();
    } catch (error) {
      log.error({ file, err: error }, `config reload refused; still running the previous config: ${errorMessage(error)}`);
      return 'refused';
    }
    const changes = configChanges(this.currentConfig, config);
    if (changes.applied.length === 0 && changes.restartNeeded.length === 0) {
      log.info({ file }, 'config reloaded: nothing changed');
      return 'unchanged';
    }
    const effective = keepRestartSettings(this.currentConfig, config);
    this.deps.apply(effective);
    this.currentConfig = effective;
    if (changes.applied.length > 0) {
      log.info({ file, changed: changes.applied }, `config reloaded: ${changes.applied.join(', ')} changed; plans already running keep the previous config`);
    }
    if (changes.restartNeeded.length > 0) {
      log.warn(
        { file, restartNeeded: changes.restartNeeded },
        `config reloaded, but ${changes.restartNeeded.join(', ')} changed: these take effect only after a restart and keep their running values until then`,
      );
    }
    return 'applied';
  }
}
