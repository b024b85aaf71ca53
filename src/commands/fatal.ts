import { EXIT_USAGE, errorMessage, exitCodeFor } from '../lib/errors.js';

/**
 * The one place a command that cannot go on is reported: a human line on stderr (with a
 * pointer to --help for a usage error) and its exit code. For the agent (`run`) also one
 * JSON log line (level fatal, `err` and `exitCode`) on stdout, where its log is collected:
 * a log pipeline that reads only stdout sees why the agent never started. The logger is
 * loaded only then, so `--help` and the other commands never load it.
 */
export async function reportFailure(command: string | undefined, error: unknown): Promise<void> {
  const exitCode = exitCodeFor(error);
  process.exitCode = exitCode;
  const hint = exitCode === EXIT_USAGE ? '\n\nRun "preemptd --help" for usage.' : '';
  process.stderr.write(`preemptd: ${errorMessage(error)}${hint}\n`);
  if (command !== 'run') return;
  const { createLogger } = await import('../lib/log.js');
  createLogger({ sync: true }).fatal({ err: error, exitCode }, `preemptd cannot run: ${errorMessage(error)}`);
}
