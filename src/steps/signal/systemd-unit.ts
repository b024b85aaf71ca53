import { PreemptdError } from '../../lib/errors.js';
import { runCommand, type CommandResult } from '../../lib/run-command.js';
import type { SendResult, Signaller } from './terminate.js';

export interface SystemctlOptions {
  signal: AbortSignal;
  /** Time limit of one systemctl call. */
  timeoutMs: number;
}

/** systemctl said the unit does not exist (`Unit x.service not loaded.`). */
function unitMissing(result: CommandResult): boolean {
  return /not loaded|not found|does not exist/i.test(result.stderr);
}

function failure(args: string[], result: CommandResult): PreemptdError {
  const said = result.stderr.trim() || result.stdout.trim() || 'no output';
  return new PreemptdError('ERR_COMMAND', `systemctl ${args.join(' ')} exited with code ${result.exitCode}: ${said}`);
}

/** `systemctl kill --signal=SIG unit` for each send; `is-active` tells whether it still runs. */
export function unitSignaller(options: SystemctlOptions): Signaller<string> {
  return {
    async send(unit, signal): Promise<SendResult> {
      const args = ['kill', `--signal=${signal}`, '--', unit];
      const result = await runCommand('systemctl', args, options);
      if (result.exitCode === 0) return 'sent';
      if (unitMissing(result)) return 'not_found';
      if (/access denied|permission/i.test(result.stderr)) return 'permission_denied';
      throw failure(args, result);
    },
    async isRunning(unit) {
      const result = await runCommand('systemctl', ['is-active', '--quiet', '--', unit], options);
      return result.exitCode === 0;
    },
  };
}

/** `systemctl stop unit`: returns once systemd has stopped it (its own stop timeout applies). */
export async function stopUnit(unit: string, options: SystemctlOptions): Promise<'exited' | 'not_found'> {
  const args = ['stop', '--', unit];
  const result = await runCommand('systemctl', args, options);
  if (result.exitCode === 0) return 'exited';
  if (unitMissing(result)) return 'not_found';
  throw failure(args, result);
}
