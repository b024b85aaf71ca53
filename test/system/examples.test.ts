import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { demoConfig } from '../../src/demo/config.js';
import type { ProviderName } from '../../src/notice/notice.js';
import { runCli } from '../helpers/cli.js';
import { TestResources } from '../helpers/resources.js';

const resources = new TestResources('preemptd-examples-');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Each cloud's spot notice and the window it leaves (DESIGN.md "Notice kinds"). */
const WINDOWS: Record<ProviderName, { kind: string; deadline: string }> = {
  aws: { kind: 'terminate', deadline: '120s' },
  gcp: { kind: 'preempt', deadline: '30s' },
  azure: { kind: 'preempt', deadline: '30s' },
  alibaba: { kind: 'terminate', deadline: '120s' },
  tencent: { kind: 'terminate', deadline: '120s' },
};

/** The config a Kubernetes example mounts: `config.yaml` of its ConfigMap. */
function configMapConfig(path: string): string {
  const documents = parseAllDocuments(readFileSync(join(ROOT, path), 'utf8')).map((document) => document.toJS() as { kind?: string; data?: Record<string, string> });
  const config = documents.find((document) => document.kind === 'ConfigMap')?.data?.['config.yaml'];
  if (config === undefined) throw new Error(`${path}: no ConfigMap with config.yaml`);
  return config;
}

/** Every shipped example config, with the clouds it names. */
const EXAMPLES: { name: string; clouds: ProviderName[]; text: () => string }[] = [
  { name: 'packaging/config.yaml', clouds: ['aws', 'gcp', 'azure', 'alibaba'], text: () => readFileSync(join(ROOT, 'packaging/config.yaml'), 'utf8') },
  { name: 'packaging/kubernetes/sidecar-gpu-training.yaml', clouds: ['aws', 'gcp'], text: () => configMapConfig('packaging/kubernetes/sidecar-gpu-training.yaml') },
  { name: 'packaging/kubernetes/daemonset.yaml', clouds: ['aws', 'gcp'], text: () => configMapConfig('packaging/kubernetes/daemonset.yaml') },
  ...(['aws', 'gcp', 'azure', 'alibaba', 'tencent'] as const).map((provider) => ({
    name: `the demo's config (${provider})`,
    clouds: [provider],
    text: () => demoConfig({ provider, metadataUrl: 'http://127.0.0.1:9', stateDir: '/nonexistent/state', receiverUrl: 'http://127.0.0.1:9/hooks/ops', pidfile: '/nonexistent/trainer.pid' }),
  })),
];

test.each(EXAMPLES)('$name passes its dry run for every cloud it names', async ({ text, clouds }) => {
  const file = join(resources.tempDir(), 'config.yaml');
  writeFileSync(file, text());
  const env = { SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/hooks/slack' };
  for (const cloud of clouds) {
    const { kind, deadline } = WINDOWS[cloud];
    const result = await runCli(['simulate', '--config', file, '--metadata-url', 'http://127.0.0.1:9', '--kind', kind, '--deadline', deadline], env);
    expect({ cloud, code: result.code, stderr: result.stderr, verdict: result.stdout.split('\n').filter((line) => line.startsWith('Fits') || line.startsWith('Does not fit')) }).toEqual({
      cloud,
      code: 0,
      stderr: '',
      verdict: ['Fits: every step can start before the plan deadline.'],
    });
  }
});
