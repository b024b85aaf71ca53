#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT_USAGE, exitCodeFor } from './lib/errors.js';
import { AGENT_VERSION } from './lib/host.js';
import { configOptions, LOG_LEVEL_CHOICES, usageMessage } from './commands/flags.js';
import { NOTICE_KINDS, PROVIDER_NAMES } from './notice/notice.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('preemptd')
  .usage('$0 <command> [options]\n\nWatches cloud spot / preemptible VM interruption notices and runs a local plan inside the notice window.')
  .command(
    'run',
    'watch the metadata service and run the plan on a notice (the daemon)',
    (argv) => configOptions(argv),
    async (args) => (await import('./commands/run.js')).runCommand(args),
  )
  .command(
    'check',
    'check that the agent could work here (config, provider, metadata, state dir, each step) without acting',
    (argv) => configOptions(argv).option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' }),
    async (args) => (await import('./commands/check.js')).checkCommand(args),
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
    async (args) => (await import('./commands/simulate.js')).simulateCommand(args),
  )
  .command(
    'simulator',
    'serve a simulated cloud metadata service on loopback, with a notice after a delay',
    (argv) =>
      argv
        .option('provider', { type: 'string', choices: [...PROVIDER_NAMES], default: 'aws', describe: 'which cloud to simulate' })
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
        .option('port', { type: 'number', default: 8169, describe: 'port to listen on (0 = any free port)' })
        .option('notice-after', { type: 'string', describe: 'show a notice after this long, e.g. 10s (never when omitted)' })
        .option('kind', { type: 'string', choices: [...NOTICE_KINDS], describe: 'notice kind (default: the cloud\'s spot interruption)' })
        .option('action', { type: 'string', choices: ['terminate', 'stop', 'hibernate'], describe: 'AWS instance-action' })
        .option('lead', { type: 'string', default: '2m', describe: 'how far ahead the notice time lies' })
        .option('faults', { type: 'string', describe: 'fault mode: a spec such as 500:0.1,reset:0.05,hang-token, or @file (docs/robustness.md)' })
        .option('log-level', { type: 'string', choices: LOG_LEVEL_CHOICES, default: 'info', describe: 'how much to log' }),
    async (args) => (await import('./commands/simulator.js')).simulatorCommand(args),
  )
  .command(
    'wait',
    'block until a notice, print it as JSON: exit 0 on a notice, 2 on --timeout (asks the running agent, else watches the metadata service)',
    (argv) =>
      configOptions(argv)
        .option('agent', { type: 'string', describe: "the running agent's local server, e.g. http://127.0.0.1:9464", defaultDescription: 'from server.listen in the config' })
        .option('timeout', { type: 'string', describe: 'give up after this long, e.g. 10m (exit 2)', defaultDescription: 'wait forever' })
        .option('kind', { type: 'string', array: true, choices: [...NOTICE_KINDS], describe: 'only notices of these kinds (repeatable), e.g. --kind terminate --kind preempt to let advisory ones (rebalance) pass', defaultDescription: 'every kind' }),
    async (args) => (await import('./commands/wait.js')).waitCommand(args),
  )
  .command(
    'restore',
    'download a snapshot into a directory and verify every checksum against its manifest',
    (argv) =>
      argv
        .option('from', { type: 'string', demandOption: true, describe: 'snapshot location, e.g. s3://bucket/ckpt/i-0abc/aws-terminate-1a2b/' })
        .option('to', { type: 'string', demandOption: true, describe: 'directory to restore into' })
        .option('endpoint', { type: 'string', describe: 'S3-compatible, GCS or Azure endpoint (MinIO, R2, emulators)' })
        .option('force-path-style', { type: 'boolean', describe: 'S3: path-style URLs (most S3-compatible servers)' })
        .option('region', { type: 'string', describe: "S3: the bucket's region" })
        .option('concurrency', { type: 'number', default: 4, describe: 'files downloaded at once' })
        .option('keep-setuid', { type: 'boolean', default: false, describe: 'restore setuid and setgid bits as stored (dropped by default)' })
        .option('log-level', { type: 'string', choices: LOG_LEVEL_CHOICES, default: 'info', describe: 'how much to log' }),
    async (args) => (await import('./commands/restore.js')).restoreCommand(args),
  )
  .demandCommand(1, 'name a command: run, check, simulate, simulator, wait, restore (see --help)')
  .strict()
  .recommendCommands()
  .version(AGENT_VERSION)
  .alias('h', 'help')
  .alias('v', 'version')
  .epilog('Docs: README.md and docs/ in the repository. Exit codes: 0 ok, 1 failure, 2 wait timed out, 64 usage, 78 invalid config.')
  .fail((message, error) => {
    if (error) throw error;
    process.stderr.write(`preemptd: ${usageMessage(message)}\n\nRun "preemptd --help" for usage.\n`);
    process.exit(EXIT_USAGE);
  });

try {
  await cli.parseAsync();
} catch (error) {
  process.exitCode = exitCodeFor(error);
  process.stderr.write(`preemptd: ${error instanceof Error ? error.message : String(error)}\n`);
}
