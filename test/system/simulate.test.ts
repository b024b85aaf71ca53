import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { syntheticNotice } from '../../src/commands/simulate.js';
import { compileConfig } from '../helpers/config.js';
import type { PreemptdEvent } from '../../src/notice/event.js';
import { buildPlan } from '../../src/plan/executor.js';
import { schedulePlan } from '../../src/plan/schedule.js';
import { findStepType } from '../../src/steps/registry.js';
import { runCli } from '../helpers/cli.js';
import type { Receiver } from '../helpers/receiver.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';

const resources = new TestResources('preemptd-simulate-');

/** A runbook with a chain, a kind filter and a finish-phase summary. */
function runbook(hooks: Receiver, pidfile: string) {
  return {
    stateDir: '/nonexistent/simulate-never-writes-here',
    safetyMargin: '5s',
    steps: [
      { name: 'tell-ops', webhook: { url: hooks.url('/ops') } },
      { name: 'checkpoint', timeout: '20s', signal: { pidfile, signal: 'SIGUSR1' } },
      { name: 'stop-trainer', after: ['checkpoint'], timeout: '90s', on: ['terminate', 'preempt'], signal: { pidfile, signal: 'SIGTERM' } },
      { name: 'summary', webhook: { url: hooks.url('/summary'), send: 'finish' } },
    ],
  };
}

/** The runbook in a config file, with a receiver for its webhooks and a workload behind its pidfile. */
async function runbookFile(settings: Record<string, unknown> = {}) {
  const dir = resources.tempDir();
  const hooks = await resources.receiver({ status: 204 });
  const workload = await resources.workloads.start(join(dir, 'signals.log'));
  const pidfile = join(dir, 'trainer.pid');
  writeFileSync(pidfile, String(workload.pid));
  const file = writeConfigFile(dir, { ...runbook(hooks, pidfile), ...settings });
  return { hooks, workload, pidfile, file };
}

test('the worst-case timetable follows the DAG and cuts budgets at the plan deadline', async () => {
  const hooks = await resources.receiver({ status: 204 });
  const config = compileConfig(runbook(hooks, '/run/none.pid'));
  const now = Date.now();
  const plan = buildPlan(syntheticNotice('terminate', 120_000, now), config, now, findStepType);
  const byName = Object.fromEntries(schedulePlan(plan, findStepType).map((run) => [run.name, run]));
  // Plan deadline: 120 s - 5 s safety margin = 115 s.
  // A webhook without timeout: gets two attempts' worth (2 x 5 s), not a flat 60 s.
  expect(byName['tell-ops']).toMatchObject({ latestStartMs: 0, budgetMs: 10_000, phase: 'notice' });
  expect(byName['checkpoint']).toMatchObject({ latestStartMs: 0, budgetMs: 20_000 });
  expect(byName['stop-trainer']).toMatchObject({ latestStartMs: 20_000, budgetMs: 90_000, after: ['checkpoint'] });
  // The finish phase starts when every notice step may have ended (110 s), and only 5 s remain.
  expect(byName['summary']).toMatchObject({ phase: 'finish', latestStartMs: 110_000, budgetMs: 5_000, mayNotStart: false });
});

test('simulate --dry-run prints the DAG order, when each step starts and its budget, and does nothing', async () => {
  const { hooks, workload, pidfile, file } = await runbookFile();

  const terminate = await runCli(['simulate', '--config', file, '--dry-run', '--kind', 'terminate', '--deadline', '30s']);
  // summary may not start within 30 s: the plan does not fit, and the exit code says so.
  expect(terminate.code).toBe(1);
  expect(terminate.stdout).toContain('Does not fit: summary may not start before the plan deadline.');
  const rows = terminate.stdout.split('\n');
  expect(rows[0]).toBe('Dry run of the plan for a simulated terminate notice: deadline in 30s; plan deadline in 25s (safetyMargin 5s).');
  const table = rows.filter((row) => /^\d+ /.test(row));
  expect(table.map((row) => row.split(/\s{2,}/).slice(0, 5))).toEqual([
    ['1', 'tell-ops', 'webhook', 'at once', '10s'],
    ['2', 'checkpoint', 'signal', 'at once', '20s'],
    ['3', 'stop-trainer', 'signal', 'after checkpoint (by +20s)', '5s'],
    ['4', 'summary', 'webhook', 'may not start: the plan deadline can pass first', '0ms'],
  ]);
  expect(table[2]).toContain(`send SIGTERM to the pid in ${pidfile}`);

  const rebalance = await runCli(['simulate', '--config', file, '--dry-run', '--kind', 'rebalance', '--deadline', 'none']);
  expect(rebalance.code).toBe(0);
  expect(rebalance.stdout).toContain('no deadline (advisory)');
  expect(rebalance.stdout).toMatch(/Not run for this rebalance notice:\n {2}checkpoint +the rebalance notice is advisory \(the VM keeps running\): a signal step runs for it only when its on: lists rebalance\n {2}stop-trainer +its on: does not list rebalance\n/);
  expect(rebalance.stdout).toMatch(/Kinds each step runs on:\n {2}tell-ops +every kind but freeze\n {2}checkpoint +every kind but rebalance, advisory maintenance, freeze\n {2}stop-trainer +terminate, preempt\n/);
  expect(rebalance.stdout).toContain('Fits: every step can start before the plan deadline.');

  expect(hooks.requests).toEqual([]);
  expect(workload.received()).toEqual([]);
});

test('simulate runs the plan for real against a synthetic notice and prints the summary event', async () => {
  const { hooks, workload, file } = await runbookFile({ logLevel: 'debug' });

  const result = await runCli(['simulate', '--config', file, '--run', '--kind', 'preempt', '--deadline', '60s']);

  expect(result.code).toBe(0);
  const event = JSON.parse(result.stdout) as PreemptdEvent;
  expect(event).toMatchObject({ version: 1, type: 'plan.finished', notice: { kind: 'preempt', provider: 'local', raw: { simulated: true } } });
  expect(event.steps.map((step) => [step.name, step.status])).toEqual([
    ['tell-ops', 'ok'],
    ['checkpoint', 'ok'],
    ['stop-trainer', 'ok'],
    ['summary', 'ok'],
  ]);
  expect(hooks.requests.map((request) => request.path).sort()).toEqual(['/ops', '/summary']);
  // The workload got both signals. A process given two at nearly the same moment may handle
  // them in either order, so the order they were sent in is read from the log: SIGTERM
  // (stop-trainer) only after SIGUSR1 (checkpoint) was sent.
  expect(workload.received().sort()).toEqual(['SIGTERM', 'SIGUSR1']);
  // Logs go to stderr, so stdout is the event alone.
  expect(result.stderr).toContain('simulate: running the plan for real');
  const lines = result.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; step?: string });
  const at = (msg: string, step: string) => lines.findIndex((line) => line.msg === msg && line.step === step);
  expect(at('step finished', 'checkpoint')).toBeGreaterThanOrEqual(0);
  expect(at('step started', 'stop-trainer')).toBeGreaterThan(at('step finished', 'checkpoint'));
});

test('a bad --deadline is a usage error naming the flag', async () => {
  const result = await runCli(['simulate', '--config', '/nonexistent.yaml', '--dry-run', '--deadline', 'soon']);
  expect(result.code).toBe(64);
  expect(result.stderr).toContain('--deadline: got "soon"');
});

test('simulate is dry unless --run is given: without flags it only prints, and --json prints the dry run as JSON', async () => {
  const { hooks, workload, file } = await runbookFile();

  const plain = await runCli(['simulate', '--config', file, '--kind', 'preempt', '--deadline', '120s']);
  expect(plain.code).toBe(0);
  expect(plain.stdout).toContain('Nothing is sent, signalled or uploaded.');

  const json = await runCli(['simulate', '--config', file, '--json', '--kind', 'maintenance', '--advisory', '--deadline', '60s']);
  expect(json.code).toBe(0);
  const dry = JSON.parse(json.stdout) as { advisory: boolean; fits: boolean; runs: { name: string }[]; excluded: { name: string; reason: string }[]; steps: { name: string; runsOn: string[]; notOn: string[] }[] };
  expect(dry).toMatchObject({ advisory: true, fits: true });
  expect(dry.runs.map((run) => run.name)).toEqual(['tell-ops', 'summary']);
  expect(dry.excluded.map((step) => step.name)).toEqual(['checkpoint', 'stop-trainer']);
  expect(dry.steps.find((step) => step.name === 'checkpoint')).toMatchObject({ notOn: ['rebalance', 'advisory maintenance', 'freeze'] });

  expect(hooks.requests).toEqual([]);
  expect(workload.received()).toEqual([]);
});

test('every simulate flag works or is refused: --no-dry-run without --run, --run with --dry-run, --advisory with a kind that cannot be', async () => {
  const { hooks, workload, file } = await runbookFile();
  const refused = [
    [['--no-dry-run'], '--no-dry-run: a rehearsal is dry unless --run is given'],
    [['--run', '--dry-run'], '--run and --dry-run contradict each other'],
    [['--advisory', '--kind', 'terminate'], '--advisory: only a maintenance notice may or may not end the VM (a terminate notice ends the VM)'],
  ] as const;
  for (const [flags, message] of refused) {
    const result = await runCli(['simulate', '--config', file, ...flags]);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain(message);
  }
  expect(hooks.requests).toEqual([]);
  expect(workload.received()).toEqual([]);
});
