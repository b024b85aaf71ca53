import { PreemptdError } from '../lib/errors.js';
import type { ProviderName } from '../notice/notice.js';
import { ALIBABA_KINDS, SimulatedAlibaba } from './alibaba.js';
import { AWS_KINDS, SimulatedAws } from './aws.js';
import { AZURE_KINDS, SimulatedAzure } from './azure.js';
import type { SimulatedCloudEntry } from './cloud.js';
import { GCP_KINDS, SimulatedGcp } from './gcp.js';
import { SimulatedTencent, TENCENT_KINDS } from './tencent.js';

/** Each simulated cloud, keyed by provider name: the kinds it can show and how to make one. */
export const SIMULATED_CLOUDS: Partial<Record<ProviderName, SimulatedCloudEntry>> = {
  aws: { kinds: AWS_KINDS, defaultKind: 'terminate', create: (options) => new SimulatedAws(options) },
  gcp: { kinds: GCP_KINDS, defaultKind: 'preempt', create: (options) => new SimulatedGcp(options) },
  azure: { kinds: AZURE_KINDS, defaultKind: 'preempt', create: (options) => new SimulatedAzure(options) },
  alibaba: { kinds: ALIBABA_KINDS, defaultKind: 'terminate', create: (options) => new SimulatedAlibaba(options) },
  tencent: { kinds: TENCENT_KINDS, defaultKind: 'terminate', create: (options) => new SimulatedTencent(options) },
};

/** The simulated cloud of a provider; a usage error naming the others when there is none. */
export function simulatedCloud(provider: ProviderName): SimulatedCloudEntry {
  const entry = SIMULATED_CLOUDS[provider];
  if (!entry) throw new PreemptdError('ERR_USAGE', `the simulator has no ${provider} cloud; expected one of ${Object.keys(SIMULATED_CLOUDS).join(', ')}`);
  return entry;
}
