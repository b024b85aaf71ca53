import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../helpers/config.js';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import type { StepSummary } from '../../src/notice/event.js';
import { silentLogger } from '../../src/lib/log.js';
import { createMetrics, readOutcome } from '../../src/observe/metrics.js';
import type { Plan } from '../../src/plan/executor.js';
import { serveDaemon } from '../../src/observe/local-server.js';
import { startSimulator } from '../../src/simulator/metadata-server.js';
import { startReceiver } from '../helpers/receiver.js';
import { scriptedNotice } from '../helpers/scripted-notice.js';
import { ScriptedProvider } from '../helpers/scripted-provider.js';
import { until } from '../helpers/until.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it for prom-client's output). */
function parseSamples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((label) => [label[1]!, label[2]!]));
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

/** The value of the one sample with this name whose labels include `labels`; undefined when none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-metrics-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('after a simulated AWS notice the scrape shows the notice, the reads, each step outcome and the timings', async () => {
  const metadata = await startSimulator({ provider: 'aws' });
  cleanups.push(() => metadata.close());
  const hooks = await startReceiver({ status: 204 });
  cleanups.push(() => hooks.close());
  const drain = await startReceiver({ status: 500 });
  cleanups.push(() => drain.close());
  const config = compileConfig({
    provider: 'aws',
    metadataUrl: metadata.url,
    pollInterval: '100ms',
    stateDir: tempDir(),
    server: { listen: '127.0.0.1:0' },
    steps: [
      { name: 'tell-ops', webhook: { url: hooks.url('/ops') } },
      { name: 'drain', http: { url: drain.url('/drain'), method: 'POST' } },
      { name: 'checkpoint', after: ['tell-ops'], signal: { pidfile: join(tempDir(), 'absent.pid') } },
    ],
  });
  const daemon = createDaemon({ config, log: silentLogger() });
  const server = await serveDaemon(daemon, config, silentLogger());
  const running = daemon.run();
  cleanups.push(async () => {
    await daemon.stop();
    await running;
    await server?.close();
  });
  const scrape = async () => parseSamples(await (await fetch(`${server!.url}/metrics`)).text());
  // The token PUT is reported first on AWS: wait for a read of the notice path itself.
  const instanceActionReads = (samples: Sample[]) => valueOf(samples, 'preemptd_metadata_requests_total', { provider: 'aws', source: 'spot/instance-action', outcome: 'ok' });
  await until(async () => instanceActionReads(await scrape()) !== undefined);
  const before = await scrape();
  expect(valueOf(before, 'preemptd_metadata_requests_total', { provider: 'aws', source: 'token', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  // Every series an alert watches exists at 0 before anything happens: the first failure is an increase.
  expect(valueOf(before, 'preemptd_notices_total', { kind: 'terminate' })).toBe(0);
  for (const status of ['ok', 'failed', 'timed_out', 'skipped']) {
    expect(valueOf(before, 'preemptd_step_outcomes_total', { step: 'drain', type: 'http', status })).toBe(0);
  }
  expect(valueOf(before, 'preemptd_build_info', { version: '0.1.0', node: process.version })).toBe(1);

  const finished = new Promise<void>((resolve) => daemon.once('planFinished', () => resolve()));
  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  await finished;
  const after = await scrape();

  expect(valueOf(after, 'preemptd_notices_total', { kind: 'terminate' })).toBe(1);
  const polls = instanceActionReads(after)!;
  expect(polls).toBeGreaterThan(instanceActionReads(before)!);
  expect(valueOf(after, 'preemptd_metadata_request_duration_seconds_count', { provider: 'aws', source: 'spot/instance-action' })).toBe(polls);
  expect(valueOf(after, 'preemptd_metadata_request_duration_seconds_bucket', { source: 'spot/instance-action', le: '+Inf' })).toBe(polls);

  expect(valueOf(after, 'preemptd_step_outcomes_total', { step: 'tell-ops', type: 'webhook', status: 'ok' })).toBe(1);
  expect(valueOf(after, 'preemptd_step_outcomes_total', { step: 'drain', type: 'http', status: 'failed' })).toBe(1);
  expect(valueOf(after, 'preemptd_step_outcomes_total', { step: 'checkpoint', type: 'signal', status: 'ok' })).toBe(1);
  expect(valueOf(after, 'preemptd_step_duration_seconds_count', { step: 'drain', type: 'http' })).toBe(1);
  expect(valueOf(after, 'preemptd_notice_to_first_step_seconds_count')).toBe(1);
  expect(valueOf(after, 'preemptd_notice_to_first_step_seconds_sum')).toBeLessThan(5);

  // AWS leaves ~120 s; the plan deadline is 5 s (safetyMargin) earlier and the plan took moments.
  const slack = valueOf(after, 'preemptd_plan_deadline_slack_seconds')!;
  expect(slack).toBeGreaterThan(60);
  expect(slack).toBeLessThanOrEqual(115);
  expect(Math.abs(valueOf(after, 'preemptd_last_successful_poll_timestamp_seconds')! - Date.now() / 1000)).toBeLessThan(10);
  expect(valueOf(after, 'preemptd_active_plans')).toBe(0);
  expect(valueOf(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
});

describe('metrics from daemon events', () => {
  function scripted(): { daemon: Daemon; metrics: ReturnType<typeof createMetrics> } {
    const daemon = createDaemon({ config: compileConfig({ stateDir: tempDir() }), log: silentLogger(), provider: new ScriptedProvider() });
    const metrics = createMetrics(daemon, { processMetrics: false });
    cleanups.push(() => metrics.close());
    return { daemon, metrics };
  }

  test('a failed read is counted as http_error when a status came back and no_answer when none did', async () => {
    expect(readOutcome({ source: 'token', ok: true, ms: 1, status: 200 })).toBe('ok');
    expect(readOutcome({ source: 'spot/instance-action', ok: true, ms: 1, status: 404 })).toBe('ok');
    expect(readOutcome({ source: 'token', ok: false, ms: 2000, error: 'timeout' })).toBe('no_answer');
    expect(readOutcome({ source: 'token', ok: false, ms: 3, status: 403, error: 'HTTP 403' })).toBe('http_error');

    const { daemon, metrics } = scripted();
    daemon.emit('read', { source: 'token', ok: false, ms: 2000, error: 'timeout' });
    daemon.emit('read', { source: 'token', ok: false, ms: 2000, error: 'timeout' });
    daemon.emit('read', { source: 'token', ok: false, ms: 3, status: 403, error: 'HTTP 403' });
    const samples = parseSamples(await metrics.render());
    expect(valueOf(samples, 'preemptd_metadata_requests_total', { source: 'token', outcome: 'no_answer' })).toBe(2);
    expect(valueOf(samples, 'preemptd_metadata_requests_total', { source: 'token', outcome: 'http_error' })).toBe(1);
    expect(valueOf(samples, 'preemptd_last_successful_poll_timestamp_seconds')).toBe(0);
  });

  test('a read of the Node watched beside the cloud is counted under its own provider', async () => {
    const { daemon, metrics } = scripted();
    daemon.emit('read', { source: 'kubernetes node node-1', provider: 'kubernetes', ok: true, ms: 3, status: 200 });
    const samples = parseSamples(await metrics.render());
    expect(valueOf(samples, 'preemptd_metadata_requests_total', { provider: 'kubernetes', source: 'kubernetes node node-1', outcome: 'ok' })).toBe(1);
  });

  test('snapshot bytes are counted once from cumulative progress and the final detail, with the upload rate', async () => {
    const { daemon, metrics } = scripted();
    const notice = scriptedNotice('terminate', 120_000);
    const plan = { noticeId: notice.id, notice, runs: [{ name: 'save', step: { type: 'snapshot' } }, { name: 'drain', step: { type: 'http' } }] } as unknown as Plan;
    daemon.emit('notice', notice);
    daemon.emit('planStarted', plan);
    daemon.emit('stepStarted', notice, 'save');
    daemon.emit('stepProgress', notice, 'save', { bytesDone: 1000 });
    daemon.emit('stepProgress', notice, 'save', { bytesDone: 4000 });
    // Another step type's bytes are not snapshot bytes.
    daemon.emit('stepProgress', notice, 'drain', { bytesDone: 99 });
    const summary: StepSummary = { name: 'save', type: 'snapshot', status: 'ok', ms: 2000, detail: { bytesDone: 10_000 } };
    daemon.emit('stepFinished', notice, summary);
    const samples = parseSamples(await metrics.render());
    expect(valueOf(samples, 'preemptd_snapshot_bytes_total', { step: 'save' })).toBe(10_000);
    expect(valueOf(samples, 'preemptd_snapshot_bytes_total', { step: 'drain' })).toBeUndefined();
    expect(valueOf(samples, 'preemptd_snapshot_throughput_bytes_per_second', { step: 'save' })).toBe(5000);
  });

  test('a run a resumed plan had finished before the restart is not counted again', async () => {
    const { daemon, metrics } = scripted();
    const notice = scriptedNotice('terminate', 120_000);
    daemon.emit('notice', notice);
    const replayed: StepSummary = { name: 'save', type: 'snapshot', status: 'failed', ms: 2000, error: 'earlier', detail: { bytesDone: 500, fromJournal: true } };
    daemon.emit('stepFinished', notice, replayed);
    daemon.emit('stepFinished', notice, { name: 'drain', type: 'http', status: 'ok', ms: 5 });
    const samples = parseSamples(await metrics.render());
    expect(valueOf(samples, 'preemptd_step_outcomes_total', { step: 'save', type: 'snapshot', status: 'failed' })).toBeUndefined();
    expect(valueOf(samples, 'preemptd_snapshot_bytes_total', { step: 'save' })).toBeUndefined();
    expect(valueOf(samples, 'preemptd_step_outcomes_total', { step: 'drain', type: 'http', status: 'ok' })).toBe(1);
  });

  test('close() stops following the daemon', async () => {
    const { daemon, metrics } = scripted();
    metrics.close();
    daemon.emit('notice', scriptedNotice('preempt', 30_000));
    expect(valueOf(parseSamples(await metrics.render()), 'preemptd_notices_total', { kind: 'preempt' })).toBe(0);
  });

  test('a step added by a reload has its outcome series at 0 at once', async () => {
    const { daemon, metrics } = scripted();
    const config = compileConfig({ provider: 'aws', stateDir: tempDir(), steps: [{ name: 'stop-workers', exec: { command: ['true'] } }] });
    daemon.emit('reloaded', config);
    const samples = parseSamples(await metrics.render());
    expect(valueOf(samples, 'preemptd_step_outcomes_total', { step: 'stop-workers', type: 'exec', status: 'failed' })).toBe(0);
    expect(valueOf(samples, 'preemptd_step_outcomes_total', { step: 'stop-workers', type: 'exec', status: 'timed_out' })).toBe(0);
  });
});
