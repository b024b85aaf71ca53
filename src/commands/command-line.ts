import yargs from 'yargs';
import { PreemptdError } from '../lib/errors.js';
import { reportFailure } from './fatal.js';
import { usageMessage } from './flags.js';
import { declareProgram } from './program.js';

/** Parses `args` with yargs and runs the command they name; a failure is reported (fatal.ts) and sets the exit code. */
export async function runCommandLine(args: string[]): Promise<void> {
  const cli = declareProgram(yargs(args)).fail((message, error) => {
    throw error ?? new PreemptdError('ERR_USAGE', usageMessage(message));
  });
  try {
    await cli.parseAsync();
  } catch (error) {
    // The command named on the line, if any: the agent's failure is also a JSON log line.
    await reportFailure(args.find((arg) => !arg.startsWith('-')), error);
  }
}
