import type { Argv } from 'yargs';
import { PROVIDER_NAMES } from '../notice/notice.js';

/** Flags shared by every command that loads a config. */
export function configOptions<T>(argv: Argv<T>) {
  return argv
    .option('config', { alias: 'c', type: 'string', describe: 'config file (YAML or JSON)', default: '/etc/preemptd/config.yaml' })
    .option('provider', { type: 'string', choices: ['auto', ...PROVIDER_NAMES], describe: 'override `provider`' })
    .option('metadata-url', { type: 'string', describe: 'override `metadataUrl` (simulators, tests)' })
    .option('poll-interval', { type: 'string', describe: 'override `pollInterval`, e.g. 1s' })
    .option('state-dir', { type: 'string', describe: 'override `stateDir`' })
    .option('log-level', { type: 'string', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], describe: 'override `logLevel`' })
    .option('set', { type: 'string', array: true, describe: 'override any key: --set aws.allowImdsV1=true (repeatable)' });
}

export type ConfigFlags = Awaited<ReturnType<typeof configOptions>['argv']>;

/**
 * Loads the config the way every command does: file, then PREEMPTD_* env (applied by
 * loadConfig), then flags, checked against every step type. Imported on use, so `--help`
 * never loads the schema.
 */
export async function loadConfigFromFlags(args: ConfigFlags) {
  const [{ loadConfig, overridesFromFlags }, { STEP_TYPES }] = await Promise.all([import('../config/load.js'), import('../steps/registry.js')]);
  return loadConfig({
    file: args.config,
    env: process.env,
    stepTypes: STEP_TYPES,
    overrides: overridesFromFlags(args.set ?? [], {
      provider: args.provider,
      metadataUrl: args.metadataUrl,
      pollInterval: args.pollInterval,
      stateDir: args.stateDir,
      logLevel: args.logLevel,
    }),
  });
}
