import type { ProviderName } from '../notice/notice.js';
import { SimulatedAlibaba } from './alibaba.js';
import { SimulatedAws } from './aws.js';
import { SimulatedAzure } from './azure.js';
import type { SimulatedCloud } from './cloud.js';
import { SimulatedGcp } from './gcp.js';

export interface SimulatedCloudOptions {
  instanceId?: string;
  /** The VM's name (Azure `compute.name`, which Scheduled Events list in `Resources`). */
  instanceName?: string;
  /**
   * Session tokens (Alibaba hardened mode): `optional` (default) accepts plain GETs too,
   * `required` refuses them with 401, `unavailable` answers the token PUT with 404.
   */
  metadataTokens?: 'optional' | 'required' | 'unavailable';
}

/** Each simulated cloud, keyed by provider name; one line per cloud. */
export const SIMULATED_CLOUDS: Partial<Record<ProviderName, (options: SimulatedCloudOptions) => SimulatedCloud>> = {
  aws: (options) => new SimulatedAws(options),
  gcp: (options) => new SimulatedGcp(options),
  azure: (options) => new SimulatedAzure(options),
  alibaba: (options) => new SimulatedAlibaba(options),
};
