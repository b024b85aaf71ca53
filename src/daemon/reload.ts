import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/types.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/**
 * Settings (compiled paths) read only when the agent starts: the provider and its watch
 * loop, the journal, the local server. A reload keeps their running values and says a
 * restart is needed. Everything else (steps, safetyMargin, minimumBudget, readiness,
 * azure.ackWhenDone, logLevel) applies from the next notice on.
 */
const STARTUP_SETTINGS = [
  ['provider'],
  ['metadataUrl'],
  ['pollIntervalMs'],
  ['requestTimeoutMs'],
  ['stateDir'],
  ['aws'],
  ['gcp'],
  ['azure', 'firstCallTimeoutMs'],
  ['alibaba'],
  ['server'],
] as const;

export interface ConfigChanges {
  /** Changed settings that apply from the next notice on (config-file names). */
  applied: string[];
  /** Changed settings that keep their running value until the agent restarts. */
  restartNeeded: string[];
}

/** The config-file name of a compiled field: `pollIntervalMs` → `pollInterval`, `server.host` → `server.listen`. */
function fileKey(path: string[]): string {
  if (path[0] === 'server' && (path[1] === 'host' || path[1] === 'port')) return 'server.listen';
  return path.map((key) => key.replace(/(Ms|Seconds)$/, '')).join('.');
}

function isSection(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Which settings differ between two compiled configs, split by when they take effect. */
export function diffConfig(previous: Config, next: Config): ConfigChanges {
  const applied = new Set<string>();
  const restartNeeded = new Set<string>();
  const walk = (before: Record<string, unknown>, after: Record<string, unknown>, prefix: string[]) => {
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (prefix.length === 0 && key === 'file') continue;
      const a = before[key];
      const b = after[key];
      if (isSection(a) && isSection(b)) walk(a, b, [...prefix, key]);
      // Deep equality, not JSON: step options hold RegExps and the like.
      else if (!isDeepStrictEqual(a, b)) (isStartupSetting([...prefix, key]) ? restartNeeded : applied).add(fileKey([...prefix, key]));
    }
  };
  walk(previous as unknown as Record<string, unknown>, next as unknown as Record<string, unknown>, []);
  return { applied: [...applied], restartNeeded: [...restartNeeded] };
}

function isStartupSetting(path: string[]): boolean {
  return STARTUP_SETTINGS.some((setting) => setting.every((key, index) => path[index] === key));
}

/** `next`, with the startup settings still at their running values (from `running`). */
export function keepStartupSettings(running: Config, next: Config): Config {
  const merged = { ...next } as unknown as Record<string, unknown>;
  for (const path of STARTUP_SETTINGS) {
    let target = merged;
    let source = running as unknown as Record<string, unknown>;
    for (const key of path.slice(0, -1)) {
      target = target[key] = { ...(target[key] as Record<string, unknown>) };
      source = source[key] as Record<string, unknown>;
    }
    const last = path.at(-1)!;
    target[last] = source[last];
  }
  return merged as unknown as Config;
}

export type ReloadOutcome = 'applied' | 'unchanged' | 'refused';

export interface ReloaderDeps {
  /** Loads and validates the config again, the same way as at start. */
  load(): Promise<Config>;
  /** Puts a new config into effect (daemon.reload, log level); startup settings are already the running ones. */
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
      log.error({ file, err: errorMessage(error) }, `config reload refused; still running the previous config: ${errorMessage(error)}`);
      return 'refused';
    }
    const changes = diffConfig(this.currentConfig, config);
    if (changes.applied.length === 0 && changes.restartNeeded.length === 0) {
      log.info({ file }, 'config reloaded: nothing changed');
      return 'unchanged';
    }
    const effective = keepStartupSettings(this.currentConfig, config);
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
