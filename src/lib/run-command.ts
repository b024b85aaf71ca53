import { execFile } from 'node:child_process';
import { CommandNotFound, PreemptdError } from './errors.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a helper program (systemctl, nvidia-smi) without a shell and collects its output.
 * A non-zero exit is a result, not an error: callers read their tool's exit codes.
 */
export function runCommand(
  command: string,
  args: string[],
  options: { signal: AbortSignal; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        // Read at call time (PATH included) rather than whatever child_process captured.
        env: process.env,
        signal: options.signal,
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (!error) return resolve({ exitCode: 0, stdout, stderr });
        if (error.code === 'ENOENT') return reject(new CommandNotFound(command));
        if (typeof error.code === 'number') return resolve({ exitCode: error.code, stdout, stderr });
        const reason = error.killed ? `timed out after ${options.timeoutMs} ms` : error.message;
        reject(new PreemptdError('ERR_COMMAND', `${command} ${args.join(' ')}: ${reason}`, { cause: error }));
      },
    );
  });
}
