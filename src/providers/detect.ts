import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PreemptdError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { PROVIDER_NAMES, type ProviderName } from '../notice/notice.js';
import { ALIBABA_METADATA_URL, probeAlibaba } from './alibaba/provider.js';
import { AWS_METADATA_URL } from './aws/provider.js';
import { probeAzure } from './azure/provider.js';
import { AZURE_METADATA_URL } from './azure/scheduled-events.js';
import { GCP_METADATA_URL } from './gcp/provider.js';
import { MetadataClient } from './metadata/client.js';
import { probeTencent, TENCENT_METADATA_URL } from './tencent/provider.js';

/** One DMI signal: a world-readable file under /sys/class/dmi/id and what it says. */
interface DmiRule {
  provider: ProviderName;
  file: string;
  matches(value: string): boolean;
}

const equals = (expected: string) => (value: string) => value === expected;

/**
 * Which cloud a machine is on, from DMI alone (no network). First match wins; add a row
 * per cloud. Root-only files (serials, product_uuid) are never read.
 */
export const DMI_RULES: DmiRule[] = [
  { provider: 'aws', file: 'sys_vendor', matches: equals('Amazon EC2') },
  { provider: 'aws', file: 'board_vendor', matches: equals('Amazon EC2') },
  { provider: 'aws', file: 'bios_vendor', matches: equals('Amazon EC2') },
  // Older Xen instances: sys_vendor is Xen, the BIOS version names Amazon (4.11.amazon).
  { provider: 'aws', file: 'bios_version', matches: (value) => /\bamazon\b/i.test(value) },
  { provider: 'gcp', file: 'product_name', matches: (value) => value === 'Google Compute Engine' || value === 'Google' },
  { provider: 'gcp', file: 'sys_vendor', matches: equals('Google') },
  // Azure's chassis tag is unique; sys_vendor "Microsoft Corporation" alone is any Hyper-V.
  { provider: 'azure', file: 'chassis_asset_tag', matches: equals('7783-7084-3265-9085-8269-3286-77') },
  { provider: 'alibaba', file: 'product_name', matches: equals('Alibaba Cloud ECS') },
  { provider: 'alibaba', file: 'sys_vendor', matches: equals('Alibaba Cloud') },
  { provider: 'tencent', file: 'sys_vendor', matches: equals('Tencent Cloud') },
  { provider: 'tencent', file: 'product_name', matches: equals('Tencent Cloud') },
];

/** A short metadata request that only the named cloud's service answers this way. */
interface Probe {
  provider: ProviderName;
  defaultUrl: string;
  /** Resolves to a description of the positive answer, or undefined. */
  run(client: MetadataClient, timeoutMs: number, signal: AbortSignal): Promise<string | undefined>;
}

/** Probes run in parallel; add a row per cloud. */
export const PROBES: Probe[] = [
  {
    provider: 'gcp',
    defaultUrl: GCP_METADATA_URL,
    async run(client, timeoutMs, signal) {
      const response = await client.request({ path: '/computeMetadata/v1/instance/id', headers: { 'Metadata-Flavor': 'Google' }, timeoutMs, signal });
      return response.headers['metadata-flavor'] === 'Google' ? `GET /computeMetadata/v1/instance/id answered HTTP ${response.status} with Metadata-Flavor: Google` : undefined;
    },
  },
  {
    provider: 'aws',
    defaultUrl: AWS_METADATA_URL,
    async run(client, timeoutMs, signal) {
      const response = await client.request({ method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, timeoutMs, signal });
      return response.status === 200 && response.body.trim() !== '' ? 'PUT /latest/api/token answered 200 with a token' : undefined;
    },
  },
  { provider: 'azure', defaultUrl: AZURE_METADATA_URL, run: probeAzure },
  { provider: 'alibaba', defaultUrl: ALIBABA_METADATA_URL, run: probeAlibaba },
  { provider: 'tencent', defaultUrl: TENCENT_METADATA_URL, run: probeTencent },
];

export const PROBE_TIMEOUT_MS = 300;

export interface DetectOptions {
  dmiDir?: string;
  /** Ask the metadata services when DMI does not tell; off means DMI only. */
  probe: boolean;
  /** Probe this address instead of each cloud's own (simulators, tests). */
  metadataUrl?: string;
  probeTimeoutMs?: number;
  log: Logger;
}

export interface Detection {
  provider: ProviderName;
  /** How it was found, for the log: `DMI sys_vendor is "Amazon EC2"`. */
  how: string;
}

/** Finds the cloud from DMI files, then from short metadata probes; throws when neither tells. */
export async function detectProvider(options: DetectOptions): Promise<Detection> {
  const dmiDir = options.dmiDir ?? '/sys/class/dmi/id';
  const fromDmi = await detectFromDmi(dmiDir);
  if (fromDmi) {
    options.log.info(fromDmi, `provider ${fromDmi.provider} detected: ${fromDmi.how}`);
    return fromDmi;
  }
  const tried = [`DMI files in ${dmiDir} (none matched a known cloud, or the folder is missing)`];
  if (options.probe) {
    const fromProbe = await detectFromProbes(options.metadataUrl, options.probeTimeoutMs ?? PROBE_TIMEOUT_MS);
    if (fromProbe) {
      options.log.info(fromProbe, `provider ${fromProbe.provider} detected: ${fromProbe.how}`);
      return fromProbe;
    }
    const where = options.metadataUrl ?? [...new Set(PROBES.map((probe) => probe.defaultUrl))].join(', ');
    tried.push(`metadata probes (${PROBES.map((probe) => probe.provider).join(', ')}) against ${where}: no cloud answered`);
  } else {
    tried.push('metadata probes are off');
  }
  throw new PreemptdError(
    'ERR_PROVIDER_DETECT',
    `could not tell which cloud this machine is on; tried ${tried.join('; ')}. Set provider: to one of ${PROVIDER_NAMES.join(', ')} in the config`,
  );
}

async function detectFromDmi(dmiDir: string): Promise<Detection | undefined> {
  const files = [...new Set(DMI_RULES.map((rule) => rule.file))];
  // A missing folder or file is normal (containers, sandboxes): it just does not match.
  const values = new Map(await Promise.all(files.map(async (file) => [file, await readFile(join(dmiDir, file), 'utf8').then((text) => text.trim(), () => undefined)] as const)));
  for (const rule of DMI_RULES) {
    const value = values.get(rule.file);
    if (value !== undefined && rule.matches(value)) return { provider: rule.provider, how: `DMI ${rule.file} is ${JSON.stringify(value)}` };
  }
  return undefined;
}

async function detectFromProbes(metadataUrl: string | undefined, timeoutMs: number): Promise<Detection | undefined> {
  const controller = new AbortController();
  const clients = new Map<string, MetadataClient>();
  const clientFor = (url: string) => {
    let client = clients.get(url);
    if (!client) clients.set(url, (client = new MetadataClient(url)));
    return client;
  };
  try {
    const answers = await Promise.all(
      PROBES.map(async (probe) => {
        const url = metadataUrl ?? probe.defaultUrl;
        const how = await probe.run(clientFor(url), timeoutMs, controller.signal).catch(() => undefined);
        return how === undefined ? undefined : { provider: probe.provider, how: `metadata probe to ${url}: ${how}` };
      }),
    );
    return answers.find((answer) => answer !== undefined);
  } finally {
    controller.abort();
    for (const client of clients.values()) client.close();
  }
}
