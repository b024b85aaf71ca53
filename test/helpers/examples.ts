import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoConfig } from '../../src/demo/config.js';
import type { ProviderName } from '../../src/notice/notice.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The first line of every shipped config: where editors find the installed JSON Schema. */
export const SCHEMA_MODELINE = '# yaml-language-server: $schema=/usr/share/preemptd/preemptd.schema.json';

/** The first ```yaml block of a Markdown file that starts with the schema line: the page's whole-config example. */
function docsConfig(path: string): string {
  const block = readFileSync(join(ROOT, path), 'utf8')
    .split(/^```yaml\n/m)
    .slice(1)
    .map((rest) => rest.slice(0, rest.indexOf('\n```')))
    .find((text) => text.startsWith(SCHEMA_MODELINE));
  if (block === undefined) throw new Error(`${path}: no yaml block starting with ${SCHEMA_MODELINE}`);
  return `${block}\n`;
}

export interface Example {
  name: string;
  /** The clouds it names, for its dry run. */
  clouds: ProviderName[];
  text: () => string;
  /** Shipped to a user as a file to edit (so it carries the schema line). */
  edited: boolean;
}

/** Every shipped example config. */
export const EXAMPLES: Example[] = [
  { name: 'packaging/config.yaml', clouds: ['aws', 'gcp', 'azure', 'alibaba'], text: () => readFileSync(join(ROOT, 'packaging/config.yaml'), 'utf8'), edited: true },
  // The Kubernetes plans: kustomize makes each a ConfigMap (packaging/kubernetes).
  ...['overlays/sidecar', 'base'].map((folder) => ({
    name: `packaging/kubernetes/${folder}/config.yaml`,
    clouds: ['aws', 'gcp'] as ProviderName[],
    text: () => readFileSync(join(ROOT, `packaging/kubernetes/${folder}/config.yaml`), 'utf8'),
    edited: true,
  })),
  { name: 'README.md', clouds: ['aws', 'gcp', 'azure', 'alibaba'], text: () => docsConfig('README.md'), edited: true },
  { name: 'docs/config.md', clouds: ['aws', 'gcp', 'azure', 'alibaba'], text: () => docsConfig('docs/config.md'), edited: true },
  ...['ray', 'slurm', 'pytorch', 'ci-runner', 'background-sync'].map((recipe) => ({
    name: `packaging/recipes/${recipe}.yaml`,
    clouds: ['aws', 'gcp', 'azure', 'alibaba'] as ProviderName[],
    text: () => readFileSync(join(ROOT, `packaging/recipes/${recipe}.yaml`), 'utf8'),
    edited: true,
  })),
  ...(['aws', 'gcp', 'azure', 'alibaba', 'tencent'] as const).map((provider) => ({
    name: `the demo's config (${provider})`,
    clouds: [provider],
    text: () => demoConfig({ provider, metadataUrl: 'http://127.0.0.1:9', stateDir: '/nonexistent/state', noticeFile: '/nonexistent/notice.json', receiverUrl: 'http://127.0.0.1:9/hooks/ops', pidfile: '/nonexistent/trainer.pid' }),
    edited: false,
  })),
];
