import { PreemptdError } from '../lib/errors.js';
import type { ProviderName } from '../notice/notice.js';
import { SimulatedAlibaba } from './alibaba.js';
import { SimulatedAws } from './aws.js';
import { SimulatedAzure } from './azure.js';
import type { SimulatedCloud, SimulatedCloudEntry, SimulatedCloudOptions } from './cloud.js';
import { SimulatedGcp } from './gcp.js';
import { SIMULATED_KINDS } from './kinds.js';
import { SimulatedTencent } from './tencent.js';

const CREATE: Partial<Record<ProviderName, (options: SimulatedCloudOptions) => SimulatedCloud>> = {
  aws: (options) => new SimulatedAws(options),
  gcp: (options) => new SimulatedGcp(options),
  azure: (options) => new SimulatedAzure(options),
  alibaba: (options) => new SimulatedAlibaba(options),
  tencent: (options) => new SimulatedTencent(options),
};

/** Each simulated cloud, keyed by provider name: the kinds it can show (kinds.ts) and how to make one. */
export const SIMULATED_CLOUDS: Partial<Record<ProviderName, SimulatedCloudEntry>> = Object.fromEntries(
  Object.entries(CREATE).map(([provider, create]) => [provider, { ...SIMULATED_KINDS[provider as ProviderName]!, create }]),
);

/** The simulated cloud of a provider; a usage error naming the others when there is none. */
export function simulatedCloud(provider: ProviderName): SimulatedCloudEntry {
  const entry = SIMULATED_CLOUDS[provider];
  if (!entry) throw new PreemptdError('ERR_USAGE', `the simulator has no ${provider} cloud; expected one of ${Object.keys(SIMULATED_CLOUDS).join(', ')}`);
  return entry;
}
