#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { PreemptdError } from './lib/errors.js';
import { reportFailure } from './commands/fatal.js';
import { usageMessage } from './commands/flags.js';
import { declareProgram } from './commands/program.js';

const cli = declareProgram(yargs(hideBin(process.argv))).fail((message, error) => {
  throw error ?? new PreemptdError('ERR_USAGE', usageMessage(message));
});

try {
  await cli.parseAsync();
} catch (error) {
  // The command named on the line, if any: the agent's failure is also a JSON log line.
  await reportFailure(hideBin(process.argv).find((arg) => !arg.startsWith('-')), error);
}
