import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProviderName } from '../../src/notice/notice.js';
import { noticeView } from '../../src/notice/notice-view.js';
import { runCli } from '../helpers/cli.js';
import { EXAMPLES, ROOT } from '../helpers/examples.js';
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

const python = spawnSync('python3', ['--version']).status === 0;
(python ? test : test.skip)('packaging/recipes/notice_check.py reads the notice file: seconds left while a notice is there, none once it is gone', () => {
  const file = join(resources.tempDir(), 'notice.json');
  const script = join(ROOT, 'packaging/recipes/notice_check.py');
  const check = () => spawnSync('python3', [script], { env: { ...process.env, PREEMPTD_NOTICE_FILE: file }, encoding: 'utf8' });
  expect(check().stdout).toBe('no notice\n');
  const now = Date.now();
  const notice = { id: 'aws-terminate-1', provider: 'aws', kind: 'terminate', deadline: new Date(now + 90_000), detectedAt: new Date(now), instance: {}, raw: {} } as const;
  writeFileSync(file, JSON.stringify(noticeView(notice, now)));
  expect(check().stdout).toMatch(/^(8\d|90) seconds left\n$/);
  writeFileSync(file, JSON.stringify(noticeView({ ...notice, kind: 'rebalance', deadline: null }, now)));
  expect(check().stdout).toBe('no notice\n');
});

/** Programs a recipe runs, replaced by scripts that log their arguments one per line. */
function fakePrograms(names: string[]): { bin: string; calls: () => string[][] } {
  const bin = resources.tempDir();
  const log = join(bin, 'calls.log');
  for (const name of names) {
    const script = join(bin, name);
    // squeue lists two running jobs; every other program just logs its arguments.
    writeFileSync(script, `#!/bin/sh\n{ echo ${name}; for arg in "$@"; do echo "  $arg"; done; } >> '${log}'\n${name === 'squeue' ? 'printf "101\\n102\\n"\n' : ''}`, { mode: 0o755 });
  }
  const calls = () =>
    readFileSync(log, 'utf8')
      .split(/\n(?! )/)
      .filter(Boolean)
      .map((call) => call.split('\n').map((line) => line.trim()));
  return { bin, calls };
}

test('the Ray and Slurm recipes run the commands their docs show, with the seconds left and the node name filled in', async () => {
  const ray = fakePrograms(['ray']);
  const rayRun = await runCli(['simulate', '--run', '--config', join(ROOT, 'packaging/recipes/ray.yaml'), '--metadata-url', 'http://127.0.0.1:9', '--kind', 'terminate', '--deadline', '120s', '--state-dir', resources.tempDir()], {
    PATH: `${ray.bin}:${process.env.PATH}`,
    RAY_NODE_ID: 'f00d',
  });
  expect(rayRun.code).toBe(0);
  const [drain] = ray.calls();
  expect(drain!.slice(0, 8)).toEqual(['ray', 'drain-node', '--node-id', 'f00d', '--reason', 'DRAIN_NODE_REASON_PREEMPTION', '--reason-message', expect.stringMatching(/^preemptd: terminate notice local-terminate-/)]);
  expect(drain![8]).toBe('--deadline-remaining-seconds');
  expect(Number(drain![9])).toBeGreaterThan(100);

  const slurm = fakePrograms(['scontrol', 'squeue', 'hostname']);
  const slurmRun = await runCli(['simulate', '--run', '--config', join(ROOT, 'packaging/recipes/slurm.yaml'), '--metadata-url', 'http://127.0.0.1:9', '--kind', 'preempt', '--deadline', '30s', '--state-dir', resources.tempDir()], {
    PATH: `${slurm.bin}:${process.env.PATH}`,
  });
  expect(slurmRun.code).toBe(0);
  const calls = slurm.calls().filter((call) => call[0] !== 'hostname');
  expect(calls.map((call) => call[0])).toEqual(['scontrol', 'squeue', 'scontrol']);
  expect(calls[0]!.slice(1, 4)).toEqual(['update', expect.stringMatching(/^NodeName=/), 'State=DRAIN']);
  expect(calls[0]![4]).toMatch(/^Reason=preemptd preempt notice, deadline \d{4}-/);
  expect(calls[2]).toEqual(['scontrol', 'requeue', '101,102']);
});
