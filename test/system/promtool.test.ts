import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestResources, writeConfigFile } from '../helpers/resources.js';

/**
 * Prometheus's own checker on what preemptd ships: the alert rules file, and a real /metrics
 * scrape of a running agent after a notice with a failed step (so the outcome series exist).
 */
const RULES = fileURLToPath(new URL('../../packaging/prometheus/preemptd-alerts.yaml', import.meta.url));
const OPERATIONS = fileURLToPath(new URL('../../docs/operations.md', import.meta.url));
const HAS_PROMTOOL = spawnSync('promtool', ['--version']).status === 0;
if (!HAS_PROMTOOL) console.warn('promtool not installed (apt-get install prometheus): skipping promtool check rules / check metrics');
const withPromtool = HAS_PROMTOOL ? test : test.skip;

const resources = new TestResources('preemptd-promtool-');

test('the alert rules in docs/operations.md are the shipped rules file, verbatim', () => {
  const docs = readFileSync(OPERATIONS, 'utf8');
  const block = /```yaml\n(# Prometheus alerting rules for preemptd[\s\S]*?)```/.exec(docs);
  expect(block?.[1]).toBe(readFileSync(RULES, 'utf8'));
  expect(docs).toContain('packaging/prometheus/preemptd-alerts.yaml');
});

withPromtool('promtool check rules accepts the shipped alert rules', () => {
  const result = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
  expect(result.stdout).toContain('SUCCESS: 4 rules found');
});

withPromtool('promtool check metrics finds nothing to fix in a scrape taken after a notice with a failed step', async () => {
  const simulator = await resources.simulator({ provider: 'aws', noticeAfterMs: 300, trigger: { kind: 'terminate', leadMs: 120_000 } });
  const dir = resources.tempDir();
  const config = writeConfigFile(dir, [
    'provider: aws',
    `metadataUrl: ${simulator.url}`,
    'pollInterval: 100ms',
    'server: { listen: "127.0.0.1:0" }',
    `stateDir: ${join(dir, 'state')}`,
    'steps:',
    '  - { name: fine, exec: { command: ["true"] } }',
    '  - { name: broken, exec: { command: ["false"] } }',
  ]);
  const agent = resources.agent(['--config', config]);
  const server = await agent.waitForLog((line) => line.msg === String(line.msg) && String(line.msg).startsWith('local server on'));
  await agent.waitForLog((line) => String(line.msg).startsWith('plan finished'), 20_000);
  const scrape = await (await fetch(`${String(server.url)}/metrics`)).text();
  expect(scrape).toMatch(/^preemptd_step_outcomes_total\{step="broken",type="exec",status="failed"\} 1$/m);
  const file = join(dir, 'metrics.txt');
  writeFileSync(file, scrape);
  const result = spawnSync('sh', ['-c', `promtool check metrics < "${file}"`], { encoding: 'utf8' });
  expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: '' });
}, 40_000);
