import type { ProviderName } from '../notice/notice.js';
import { SimulatedAlibaba } from './alibaba.js';
import { SimulatedAws } from './aws.js';
import { SimulatedAzure } from './azure.js';
import type { SimulatedCloud, SimulatedCloudOptions } from './cloud.js';
import { SimulatedGcp } from './gcp.js';
import { SimulatedTencent } from './tencent.js';

/** Each simulated cloud, keyed by provider name; one line per cloud. */
export const SIMULATED_CLOUDS: Partial<Record<ProviderName, (options: SimulatedCloudOptions) => SimulatedCloud>> = {
  aws: (options) => new SimulatedAws(options),
  gcp: (options) => new SimulatedGcp(options),
  azure: (options) => new SimulatedAzure(options),
  alibaba: (options) => new SimulatedAlibaba(options),
  tencent: (options) => new SimulatedTencent(options),
};
