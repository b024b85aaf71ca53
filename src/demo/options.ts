import { parseArgs } from 'node:util';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import { PROVIDER_NAMES, type ProviderName } from '../notice/notice.js';

export const DEMO_USAGE = `Usage: npm run demo -- [options]

Runs the simulator, a sample workload, a local webhook receiver and the agent on loopback,
and shows a spot notice handled end to end.

Options:
  --provider <name>       which cloud to simulate: ${PROVIDER_NAMES.join(', ')} (default: aws)
  --notice-after <secs>   seconds until the notice appears (default: 5)
  -h, --help              show this help
`;

export type DemoOptions = { help: true } | { help: false; provider: ProviderName; noticeAfterSeconds: number };

/** The demo's command line; a bad one is a usage error (exit 64) naming what was expected. */
export function parseDemoArgs(args: string[]): DemoOptions {
  let values: { provider: string; 'notice-after': string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: { provider: { type: 'string', default: 'aws' }, 'notice-after': { type: 'string', default: '5' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    throw new PreemptdError('ERR_USAGE', errorMessage(error));
  }
  if (values.help) return { help: true };
  const provider = values.provider as ProviderName;
  if (!PROVIDER_NAMES.includes(provider)) throw new PreemptdError('ERR_USAGE', `--provider: got "${values.provider}": expected one of ${PROVIDER_NAMES.join(', ')}`);
  const noticeAfterSeconds = Number(values['notice-after']);
  if (!/^\d+(\.\d+)?$/.test(values['notice-after']) || !Number.isFinite(noticeAfterSeconds)) {
    throw new PreemptdError('ERR_USAGE', `--notice-after: got "${values['notice-after']}": expected a number of seconds, e.g. 5`);
  }
  return { help: false, provider, noticeAfterSeconds };
}
