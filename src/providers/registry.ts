import { PreemptdError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { SourceName } from '../notice/notice.js';
import { ALIBABA_METADATA_URL, AlibabaProvider } from './alibaba/provider.js';
import { AWS_METADATA_URL, AwsProvider } from './aws/provider.js';
import { AzureProvider } from './azure/provider.js';
import { AZURE_METADATA_URL } from './azure/scheduled-events.js';
import { GCP_METADATA_URL, GcpProvider } from './gcp/provider.js';
import { TENCENT_METADATA_URL, TencentProvider } from './tencent/provider.js';
import { withNodeSource } from './alongside.js';
import type { Provider, ProviderOptions } from './types.js';

interface ProviderEntry {
  /** The metadata service address used when config sets no `metadataUrl`. */
  defaultUrl: string;
  create(options: ProviderOptions, log?: Logger): Provider | Promise<Provider>;
}

/** What `metadataUrl` shows for the kubernetes source, which reads no metadata service. */
const KUBERNETES_API = 'the Kubernetes API';

/** Every provider, keyed by name; one line per cloud. */
export const PROVIDERS: Partial<Record<SourceName, ProviderEntry>> = {
  aws: { defaultUrl: AWS_METADATA_URL, create: (options, log) => new AwsProvider(options, log) },
  gcp: { defaultUrl: GCP_METADATA_URL, create: (options) => new GcpProvider(options) },
  azure: { defaultUrl: AZURE_METADATA_URL, create: (options) => new AzureProvider(options) },
  alibaba: { defaultUrl: ALIBABA_METADATA_URL, create: (options, log) => new AlibabaProvider(options, log) },
  tencent: { defaultUrl: TENCENT_METADATA_URL, create: (options) => new TencentProvider(options) },
  // No metadata service: the API server comes from the kubeconfig or the pod's service env.
  // Loaded only when configured, so an agent that watches no Node does not load the client.
  kubernetes: {
    defaultUrl: KUBERNETES_API,
    create: async (options) => {
      const { KubernetesProvider } = await import('./kubernetes/provider.js');
      return new KubernetesProvider({ node: null, kubeconfig: null, signals: [], ...options.kubernetes, ...(options.bootId ? { bootId: options.bootId } : {}) });
    },
  },
};

/**
 * The provider `name`, with the own Node watched beside it when `options.kubernetes.watchNode`
 * says so. `log` receives provider warnings (token trouble); without it they go to the watch's log.
 */
export async function createProvider(name: SourceName, options: ProviderOptions, log?: Logger): Promise<Provider> {
  const provider = await providerEntry(name).create(options, log);
  if (name === 'kubernetes' || options.kubernetes?.watchNode !== true) return provider;
  return withNodeSource(provider, await providerEntry('kubernetes').create(options, log));
}

export function defaultMetadataUrl(name: SourceName): string {
  return providerEntry(name).defaultUrl;
}

function providerEntry(name: SourceName): ProviderEntry {
  const entry = PROVIDERS[name];
  if (!entry) throw new PreemptdError('ERR_USAGE', `no ${name} provider; expected one of ${Object.keys(PROVIDERS).join(', ')}`);
  return entry;
}
