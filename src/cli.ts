#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT_USAGE, exitCodeFor } from './lib/errors.js';
import { usageMessage } from './commands/flags.js';
import { declareProgram } from './commands/program.js';

const cli = declareProgram(yargs(hideBin(process.argv)))
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
