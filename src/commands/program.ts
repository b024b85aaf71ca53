import type { Argv } from 'yargs';
import { AGENT_VERSION } from '../lib/host.js';
import { NOTICE_KINDS, PROVIDER_NAMES } from '../notice/notice.js';
import { configOptions, logFlags, storeFlags } from './flags.js';
import { SIMULATOR_KIND_CHOICES, simulatorKindsHelp } from './simulator-kinds.js';

/**
 * Every command, flag and description of the CLI. cli.ts parses with it; the completion
 * scripts and the man page are generated from it (cli-spec.ts), so they cannot drift.
 */
export function declareProgram<T>(argv: Argv<T>) {
  return argv
    .scriptName('preemptd')
    .usage('$0 <command> [options]\n\nWatches cloud spot / preemptible VM interruption notices and runs a local plan inside the notice window.')
    .command(
      'run',
      'watch the metadata service and run the plan on a notice (the daemon)',
      (argv) => configOptions(argv),
      async (args) => (await import('./run.js')).runCommand(args),
    )
    .command(
      'check',
      'check that the agent could work here (config, provider, metadata, state dir, each step) without acting',
      (argv) =>
        configOptions(argv)
          .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
          .option('as-user', {
            type: 'string',
            describe: "check files, pidfiles and credentials as this user, with CAP_KILL as the unit grants (needs root; setpriv)",
            defaultDescription: "as root: the unit's User=, else preemptd when that user exists",
          }),
      async (args) => (await import('./check.js')).checkCommand(args),
    )
    .command(
      'health',
      "ask the running agent's /healthz at the configured listen address (exit 0 when healthy; for container HEALTHCHECKs)",
      (argv) => configOptions(argv),
      async (args) => (await import('./health.js')).healthCommand(args),
    )
    .command(
      'simulate',
      'rehearse the plan against a synthetic notice: prints order, timing and budgets and does nothing, unless --run',
      (argv) =>
        configOptions(argv)
          .option('kind', { type: 'string', choices: [...NOTICE_KINDS], default: 'terminate', describe: 'notice kind' })
          .option('deadline', { type: 'string', default: '120s', describe: 'time until the notice deadline, e.g. 30s, 2m, or none' })
          .option('advisory', { type: 'boolean', describe: 'with --kind maintenance: a maintenance the VM survives (a live migration)' })
          .option('dry-run', { type: 'boolean', describe: 'print what each step would do and when; do nothing (the default); exit 1 if the plan does not fit' })
          .option('run', { type: 'boolean', default: false, describe: 'run the steps for real: send webhooks, signal processes, upload snapshots' })
          .option('json', { type: 'boolean', default: false, describe: 'print JSON: the dry run as JSON (with --run stdout is always the summary event)' }),
      async (args) => (await import('./simulate.js')).simulateCommand(args),
    )
    .command(
      'simulator',
      'serve a simulated cloud metadata service on loopback, with a notice after a delay',
      (argv) =>
        logFlags(
          argv
            .option('provider', { type: 'string', choices: [...PROVIDER_NAMES], default: 'aws', describe: 'which cloud to simulate' })
            .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
            .option('port', { type: 'number', default: 8169, describe: 'port to listen on (0 = any free port)' })
            .option('notice-after', { type: 'string', describe: 'show a notice after this long, e.g. 10s (never when omitted)' })
            .option('kind', { type: 'string', choices: SIMULATOR_KIND_CHOICES, describe: 'notice kind; the provider must be able to show it (list below; default: its spot interruption)' })
            .option('action', {
              type: 'string',
              choices: ['terminate', 'stop', 'hibernate', 'autoscaling', 'migrate', 'upcoming'],
              describe:
                'AWS: the spot instance-action (terminate, stop, hibernate) or autoscaling (target-lifecycle-state Terminated); GCP --kind maintenance: migrate, terminate, or upcoming (instance/upcoming-maintenance, window start at --lead)',
            })
            .option('lead', { type: 'string', default: '2m', describe: 'how far ahead the notice time lies' })
            .option('faults', { type: 'string', describe: 'fault mode: a spec such as 500:0.1,reset:0.05,hang-token, or @file (docs/robustness.md)' }),
        ).epilog(simulatorKindsHelp()),
      async (args) => (await import('./simulator.js')).simulatorCommand(args),
    )
    .command(
      'wait',
      'block until a notice, print it as JSON: exit 0 on a notice, 2 on --timeout (asks the running agent, else watches the metadata service)',
      (argv) =>
        configOptions(argv)
          .option('agent', { type: 'string', describe: "the running agent's local server, e.g. http://127.0.0.1:9464", defaultDescription: 'from server.listen in the config' })
          .option('timeout', { type: 'string', describe: 'give up after this long, e.g. 10m (exit 2)', defaultDescription: 'wait forever' })
          .option('kind', {
            type: 'string',
            array: true,
            choices: [...NOTICE_KINDS],
            describe: 'only notices of these kinds (repeatable), e.g. --kind terminate --kind preempt to let advisory ones (rebalance) pass',
            defaultDescription: 'every kind',
          }),
      async (args) => (await import('./wait.js')).waitCommand(args),
    )
    .command(
      'restore',
      'download a snapshot into a directory and verify every checksum against its manifest',
      (argv) =>
        logFlags(
          storeFlags(
            argv
              .option('from', { type: 'string', describe: 'snapshot location, e.g. s3://bucket/ckpt/i-0abc/aws-terminate-1a2b/' })
              .option('latest', { type: 'string', describe: 'a dedup repository prefix: restore the newest complete snapshot its latest.json names' })
              .conflicts('from', 'latest')
              .option('to', { type: 'string', demandOption: true, describe: 'directory to restore into' }),
          )
            .option('concurrency', { type: 'number', default: 4, describe: 'files downloaded at once' })
            .option('keep-setuid', { type: 'boolean', default: false, describe: 'restore setuid and setgid bits as stored (dropped by default)' })
            .option('if-newer', { type: 'boolean', default: false, describe: 'with --latest: restore only when --to is empty or older than the latest snapshot, else exit 0' })
            .option('json', { type: 'boolean', default: false, describe: 'progress and summary as JSON lines on stdout, even on a terminal' }),
        ),
      async (args) => (await import('./restore.js')).restoreCommand(args),
    )
    .command(
      'snapshots <action> <prefix>',
      'list the snapshots of a dedup repository (snapshots list PREFIX), or delete those a retention policy does not keep (snapshots prune PREFIX --keep-last N; dry unless --apply)',
      (argv) =>
        logFlags(
          storeFlags(
            argv
              .positional('action', { type: 'string', choices: ['list', 'prune'], demandOption: true, describe: 'list, or prune' })
              .positional('prefix', { type: 'string', demandOption: true, describe: "the repository: a dedup snapshot step's to:, e.g. s3://bucket/ckpt/" }),
          )
            .option('json', { type: 'boolean', default: false, describe: 'print JSON lines (the default when stdout is not a terminal)' })
            .option('keep-last', { type: 'number', describe: 'prune: keep the newest N snapshots' })
            .option('keep-within', { type: 'string', describe: 'prune: keep the snapshots taken within this long, e.g. 7d' })
            .option('grace', { type: 'string', default: '24h', describe: 'prune: never delete a manifest, pack, chunk or leftover .partial file written within this long (a writer may rely on it)' })
            .option('apply', { type: 'boolean', default: false, describe: 'prune: delete; without it, print what would be deleted and delete nothing' }),
        ),
      async (args) => (await import('./snapshots.js')).snapshotsCommand(args),
    )
    .demandCommand(1, 'name a command: run, check, health, simulate, simulator, wait, restore, snapshots (see --help)')
    .strict()
    .recommendCommands()
    .version(AGENT_VERSION)
    .alias('h', 'help')
    .alias('v', 'version')
    .epilog('Docs: README.md and docs/ in the repository. Exit codes: 0 ok, 1 failure, 64 usage, 78 invalid config.');
}
