import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { buildPlan, executePlan } from '../../src/plan/executor.js';
import { findStepType } from '../../src/steps/registry.js';
import { hostFacts } from '../../src/lib/host.js';
import { manifestSchema } from '../../src/snapshots/manifest.js';
import { compileConfig } from '../helpers/config.js';
import { TestResources } from '../helpers/resources.js';
import { testNotice } from '../helpers/step-context.js';
import { FIXTURE_BIN } from '../helpers/workload.js';

const resources = new TestResources('preemptd-wait-step-');

/** Starts the checkpointing trainer: step-1.pt now, step-2.pt `delayMs` after SIGUSR1. */
async function startTrainer(dir: string, delayMs: number, marker?: string): Promise<number> {
  const args = [join(FIXTURE_BIN, 'checkpointing-trainer.mjs'), dir, String(delayMs), '5', ...(marker ? [marker] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  resources.defer(() => child.kill('SIGKILL'));
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(chunk.toString()).toContain('ready');
  return child.pid!;
}

/** Runs signal → wait → snapshot (file://) for a terminate notice; returns the outcomes and the manifest. */
async function runCheckpointPlan(wait: (ckpt: string) => Record<string, unknown>, marker?: string, timeout = '20s') {
  const dir = resources.tempDir();
  const ckpt = join(dir, 'ckpt');
  mkdirSync(ckpt);
  const pid = await startTrainer(ckpt, 300, marker);
  const config = compileConfig({
    provider: 'aws',
    metadataUrl: 'http://127.0.0.1:1',
    stateDir: join(dir, 'state'),
    steps: [
      { name: 'checkpoint', signal: { pid, signal: 'SIGUSR1' } },
      { name: 'checkpoint-written', after: ['checkpoint'], timeout, wait: wait(ckpt) },
      { name: 'save', after: ['checkpoint-written'], snapshot: { paths: [ckpt], to: `file://${dir}/store/` } },
    ],
  });
  const notice = testNotice();
  const plan = buildPlan(notice, config, Date.now(), findStepType);
  const result = await executePlan(plan, { log: silentLogger(), host: hostFacts(), lookup: findStepType });
  const manifestFile = join(dir, 'store', 'manifest.json');
  const manifest = manifestSchema.parse(JSON.parse(readFileSync(manifestFile, 'utf8')));
  return { result, manifest, stored: readdirSync(join(dir, 'store', 'ckpt')).sort() };
}

describe('wait step between a checkpoint signal and a snapshot', () => {
  test('with files: the snapshot holds the new checkpoint, complete, once it stopped changing', async () => {
    const { result, manifest, stored } = await runCheckpointPlan((ckpt) => ({ files: join(ckpt, 'step-*.pt'), settle: '300ms' }));
    expect(result.steps.map((step) => [step.name, step.status])).toEqual([
      ['checkpoint', 'ok'],
      ['checkpoint-written', 'ok'],
      ['save', 'ok'],
    ]);
    const waited = result.steps[1]!.detail as { files: { path: string; size: number }[] };
    // Only the file written since the signal step started: step-1.pt is the previous checkpoint.
    expect(waited.files.map((file) => file.path.split('/').pop())).toEqual(['step-2.pt']);
    expect(waited.files[0]!.size).toBe(5 * 64 * 1024);
    const saved = manifest.files.find((file) => file.path === 'ckpt/step-2.pt');
    expect(saved).toMatchObject({ type: 'file', size: 5 * 64 * 1024 });
    expect(stored).toEqual(['step-1.pt', 'step-2.pt']);
  });

  test('with a marker: the wait ends when the marker written last appears', async () => {
    const { result, manifest } = await runCheckpointPlan((ckpt) => ({ marker: join(ckpt, 'COMPLETE') }), 'COMPLETE');
    expect(result.steps[1]).toMatchObject({ name: 'checkpoint-written', status: 'ok' });
    expect(manifest.files.find((file) => file.path === 'ckpt/step-2.pt')).toMatchObject({ size: 5 * 64 * 1024 });
  });

  test('a checkpoint that never comes is timed_out, saying what it waited for, and the snapshot still runs', async () => {
    const { result, manifest } = await runCheckpointPlan((ckpt) => ({ marker: join(ckpt, 'never-written') }), undefined, '2s');
    const waitRun = result.steps[1]!;
    expect(waitRun).toMatchObject({ name: 'checkpoint-written', status: 'timed_out' });
    expect(String(waitRun.detail?.waitingFor)).toContain('never-written');
    expect(result.steps[2]).toMatchObject({ name: 'save', status: 'ok' });
    expect(manifest.files.map((file) => file.path)).toContain('ckpt/step-2.pt');
  });
});
