import { existsSync } from 'node:fs';
import type { Argv } from 'yargs';
import type { ConfigIssue } from '../lib/errors.js';
import { LOG_FORMATS } from '../lib/log-text.js';
import { SOURCE_NAMES } from '../notice/notice.js';

const DEFAULT_CONFIG_FILE = '/etc/preemptd/config.yaml';

/** pino's levels, as `--log-level` takes them on every command. */
export const LOG_LEVEL_CHOICES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** How the commands that log for a person (simulator, restore) take their log flags. */
export function logFlags<T>(argv: Argv<T>) {
  return argv
    .option('log-level', { type: 'string', choices: LOG_LEVEL_CHOICES, default: 'info', describe: 'how much to log' })
    .option('log-format', { type: 'string', choices: LOG_FORMATS, describe: 'log lines as JSON or as text', defaultDescription: 'text on a terminal, else json' });
}

/** How the commands that reach an object store themselves (restore, snapshots) take its settings. */
export function storeFlags<T>(argv: Argv<T>) {
  return argv
    .option('endpoint', { type: 'string', describe: 'S3-compatible, GCS or Azure endpoint (MinIO, R2, emulators)' })
    .option('force-path-style', { type: 'boolean', describe: 'S3: path-style URLs (most S3-compatible servers)' })
    .option('region', { type: 'string', describe: "S3: the bucket's region" });
}

/**
 * Flags shared by every command that loads a config, as data: yargs declares them (configOptions),
 * and `run` in its plain forms is parsed from them without yargs (run-line.ts).
 */
export const CONFIG_OPTIONS = {
  config: { alias: 'c', type: 'string', describe: 'config file (YAML or JSON)', defaultDescription: `$PREEMPTD_CONFIG, else ${DEFAULT_CONFIG_FILE}` },
  provider: { type: 'string', choices: ['auto', ...SOURCE_NAMES], describe: 'override `provider`' },
  'metadata-url': { type: 'string', describe: 'override `metadataUrl` (simulators, tests)' },
  'poll-interval': { type: 'string', describe: 'override `pollInterval`, e.g. 1s' },
  'state-dir': { type: 'string', describe: 'override `stateDir`' },
  'log-level': { type: 'string', choices: LOG_LEVEL_CHOICES, describe: 'override `logLevel`' },
  set: { type: 'string', array: true, describe: 'override any key: --set aws.allowImdsV1=true (repeatable)' },
} as const;

export function configOptions<T>(argv: Argv<T>) {
  return argv.options(CONFIG_OPTIONS);
}

/** What a command that loads a config takes from its flags (yargs' argv has these and more). */
export type ConfigFlags = Pick<Awaited<ReturnType<typeof configOptions>['argv']>, 'config' | 'provider' | 'metadataUrl' | 'pollInterval' | 'stateDir' | 'logLevel' | 'set'>;

/**
 * The config file: --config, else $PREEMPTD_CONFIG, else the default path; with
 * `defaultOptional`, no file (defaults and overrides alone) when that default path is absent.
 */
function configFile(args: Pick<ConfigFlags, 'config'>, defaultOptional: boolean, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = args.config ?? (env.PREEMPTD_CONFIG || DEFAULT_CONFIG_FILE);
  return defaultOptional && file === DEFAULT_CONFIG_FILE && !existsSync(file) ? undefined : file;
}

/** A config warning as a command without a JSON log shows it. */
function warnOnStderr(warning: ConfigIssue): void {
  process.stderr.write(`preemptd: warning: ${warning.path}: ${warning.message}\n`);
}

/**
 * Loads the config the way every command does: file, then PREEMPTD_* env (applied by
 * loadConfig), then flags, checked against every step type. Imported on use, so `--help`
 * never loads the schema. Warnings (PREEMPTD_* variables that are no setting) go to
 * `onWarning`, by default to stderr.
 */
export async function loadConfigFromFlags(args: ConfigFlags, onWarning: (warning: ConfigIssue) => void = warnOnStderr, options: { defaultOptional?: boolean } = {}) {
  const [{ loadConfig, overridesFromFlags }, { STEP_TYPES }] = await Promise.all([import('../config/load.js'), import('../steps/registry.js')]);
  return loadConfig({
    file: configFile(args, options.defaultOptional === true),
    env: process.env,
    stepTypes: STEP_TYPES,
    onWarning,
    overrides: overridesFromFlags(args.set ?? [], {
      provider: args.provider,
      metadataUrl: args.metadataUrl,
      pollInterval: args.pollInterval,
      stateDir: args.stateDir,
      logLevel: args.logLevel,
    }),
  });
}

export const camelCase = (name: string) => name.replace(/-([a-z])/g, (_dash, letter: string) => letter.toUpperCase());

/** yargs names an unknown `--bogus-flag` twice (`bogus-flag, bogusFlag`): say each once, as typed. */
export function usageMessage(message: string): string {
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (!unknown) return message;
  const names = unknown[1]!.split(', ');
  const typed = names.filter((name) => !names.some((other) => other !== name && camelCase(other) === name));
  return `Unknown argument${typed.length === 1 ? '' : 's'}: ${typed.join(', ')}`;
}
