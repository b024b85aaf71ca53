import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TriggerSpec } from '../../src/simulator/cloud.js';
import { compileConfig } from '../helpers/config.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import type { Notice, ProviderName } from '../../src/notice/notice.js';
import { TestResources } from '../helpers/resources.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-advisory-');

/**
 * A real daemon against the simulator, with the docs' stop-trainer (no on:), a checkpoint
 * that opts in to rebalance, and a webhook whose finish message marks the plan's end.
 * Returns the notice seen, the signals the workload got, and the steps' outcomes.
 */
async function runPlanFor(provider: ProviderName, trigger: TriggerSpec) {
  const dir = resources.tempDir();
  const metadata = await resources.simulator({ provider });
  const hooks = await resources.receiver({ status: 204 });
  const workload = await resources.workloads.start(join(dir, 'signals.log'));
  const pidfile = join(dir, 'trainer.pid');
  writeFileSync(pidfile, String(workload.pid));
  const config = compileConfig(
    {
      provider,
      metadataUrl: metadata.url,
      pollInterval: '100ms',
      stateDir: join(dir, 'state'),
      steps: [
        { name: 'tell-ops', webhook: { url: hooks.url('/ops'), send: 'finish' } },
        { name: 'checkpoint', on: ['rebalance', 'terminate', 'preempt', 'maintenance'], signal: { pidfile, signal: 'SIGUSR1' } },
        { name: 'stop-trainer', after: ['checkpoint'], signal: { pidfile, signal: 'SIGTERM', killAfter: '20s' } },
      ],
    },
    { file: undefined },
  );
  const daemon = createDaemon({ config, log: silentLogger() });
  const notices: Notice[] = [];
  daemon.on('notice', (notice) => notices.push(notice));
  void resources.runDaemon(daemon);
  metadata.trigger(trigger);
  await hooks.waitFor(1, 20_000);
  const event = JSON.parse(hooks.requests[0]!.body) as { notice: Record<string, unknown>; steps: { name: string }[] };
  // The workload logs a signal a moment after it arrives: wait for one line per signal step that ran.
  await until(() => workload.received().length >= event.steps.length);
  return { notice: notices[0]!, event, signals: workload.received(), alive: workload.child.exitCode === null && workload.child.signalCode === null };
}

test('an AWS rebalance recommendation never stops the trainer: only the step that lists rebalance runs', async () => {
  const { notice, event, signals, alive } = await runPlanFor('aws', { kind: 'rebalance' });
  expect(notice.kind).toBe('rebalance');
  expect(event.steps.map((step) => step.name)).toEqual(['checkpoint']);
  expect(signals).toEqual(['SIGUSR1']);
  expect(alive).toBe(true);
}, 30_000);

test('a GCP live migration (MIGRATE_ON_HOST_MAINTENANCE) is advisory and spares the trainer', async () => {
  const { notice, event, signals, alive } = await runPlanFor('gcp', { kind: 'maintenance', action: 'migrate' });
  expect(notice).toMatchObject({ kind: 'maintenance', advisory: true });
  expect(event.notice).toMatchObject({ kind: 'maintenance', advisory: true });
  expect(event.steps.map((step) => step.name)).toEqual(['checkpoint']);
  expect(signals).toEqual(['SIGUSR1']);
  expect(alive).toBe(true);
}, 30_000);

test('a GCP upcoming maintenance is advisory, spares the trainer, and carries its reasons in the event', async () => {
  const { notice, event, signals, alive } = await runPlanFor('gcp', { kind: 'maintenance', action: 'upcoming', leadMs: 600_000, reasons: ['FAILURE_GPU_XID'] });
  expect(notice).toMatchObject({ kind: 'maintenance', advisory: true, reasons: ['FAILURE_GPU_XID'] });
  expect(event.notice).toMatchObject({ kind: 'maintenance', advisory: true, reasons: ['FAILURE_GPU_XID'], raw: { value: { maintenance_status: 'PENDING' } } });
  // Due at the window start, ten minutes out, not in 60 s.
  expect(Date.parse(event.notice.deadline as string) - notice.detectedAt.getTime()).toBeGreaterThan(500_000);
  expect(event.steps.map((step) => step.name)).toEqual(['checkpoint']);
  expect(signals).toEqual(['SIGUSR1']);
  expect(alive).toBe(true);
}, 30_000);

test('a GCP maintenance that terminates the VM still runs the destructive steps', async () => {
  const { notice, event, signals } = await runPlanFor('gcp', { kind: 'maintenance', action: 'terminate' });
  expect(notice.kind).toBe('maintenance');
  expect(notice.advisory).toBeUndefined();
  expect(event.steps.map((step) => step.name)).toEqual(['checkpoint', 'stop-trainer']);
  expect(signals).toContain('SIGTERM');
}, 30_000);

test('AWS system-maintenance leaves the instance running: advisory; a system-reboot is not', async () => {
  const maintenance = await runPlanFor('aws', { kind: 'maintenance', action: 'system-maintenance', leadMs: 120_000 });
  expect(maintenance.notice).toMatchObject({ kind: 'maintenance', advisory: true });
  expect(maintenance.signals).toEqual(['SIGUSR1']);
  const reboot = await runPlanFor('aws', { kind: 'maintenance', action: 'system-reboot', leadMs: 120_000 });
  expect(reboot.notice.advisory).toBeUndefined();
  expect(reboot.event.steps.map((step) => step.name)).toEqual(['checkpoint', 'stop-trainer']);
}, 60_000);
