import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProviderName } from '../../src/notice/notice.js';
import { runCli } from '../helpers/cli.js';
import { EXAMPLES } from '../helpers/examples.js';
import { TestResources } from '../helpers/resources.js';

const resources = new TestResources('preemptd-examples-');

/** Each cloud's spot notice and the window it leaves (DESIGN.md "Notice kinds"). */
const WINDOWS: Record<ProviderName, { kind: string; deadline: string }> = {
  aws: { kind: 'terminate', deadline: '120s' },
  gcp: { kind: 'preempt', deadline: '30s' },
  azure: { kind: 'preempt', deadline: '30s' },
  alibaba: { kind: 'terminate', deadline: '120s' },
  tencent: { kind: 'terminate', deadline: '120s' },
};

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
