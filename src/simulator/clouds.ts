import type { ProviderName } from '../notice.js';
import type { SimulatedCloud } from './cloud.js';

export interface SimulatedCloudOptions {
  instanceId?: string;
}

/** Each simulated cloud, keyed by provider name; one line per cloud. */
export const SIMULATED_CLOUDS: Partial<Record<ProviderName, (options: SimulatedCloudOptions) => SimulatedCloud>> = {};
