import { GcpProvider } from '../../src/providers/gcp/provider.js';
import type { MetadataRead, ProviderEvent, WatchContext } from '../../src/providers/types.js';
import { silentLogger } from '../../src/lib/log.js';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';
import { testProviderOptions } from '../helpers/provider-watch.js';

// A poll interval far longer than the tests: a notice can only arrive through the hanging GET.
const options = (baseUrl: string) => testProviderOptions(baseUrl, { pollIntervalMs: 60_000, gcp: { hangTimeoutSeconds: 30 } });

describe('GCP provider against the simulator', () => {
  let simulator: RunningSimulator;
  let controller: AbortController;
  let reads: MetadataRead[];
  let context: WatchContext;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'gcp', instanceId: '777000111' });
    controller = new AbortController();
    reads = [];
    context = { signal: controller.signal, log: silentLogger(), onRead: (read) => reads.push(read) };
  });
  afterEach(async () => {
    controller.abort();
    await simulator.close();
  });

  /** Waits until both keys are hanging: each has been read once and nothing failed. */
  async function untilHanging(): Promise<void> {
    while (!(reads.some((r) => r.source === 'instance/preempted') && reads.some((r) => r.source === 'instance/maintenance-event'))) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  test('a preemption reaches the provider through the hanging GET, with a 30 s deadline', async () => {
    const iterator = new GcpProvider(options(simulator.url)).watch(context)[Symbol.asyncIterator]();
    const next = iterator.next();
    await untilHanging();
    const readsBefore = reads.length;
    simulator.trigger({ kind: 'preempt' });
    const { value } = (await next) as IteratorResult<ProviderEvent>;
    expect(value.type).toBe('notice');
    if (value.type !== 'notice') return;
    expect(value.notice.kind).toBe('preempt');
    expect(value.notice.deadline!.getTime() - value.notice.detectedAt.getTime()).toBe(30_000);
    expect(value.notice.instance).toMatchObject({ id: '777000111', zone: 'us-central1-a', region: 'us-central1', type: 'g2-standard-4', lifecycle: 'spot' });
    // One read answered the change: the hanging GET, no polls in between.
    expect(reads.slice(readsBefore).filter((r) => r.source === 'instance/preempted')).toHaveLength(1);
    await iterator.return?.();
  });

  test('maintenance yields a notice and its return to NONE withdraws it', async () => {
    const iterator = new GcpProvider(options(simulator.url)).watch(context)[Symbol.asyncIterator]();
    const first = iterator.next();
    await untilHanging();
    simulator.trigger({ kind: 'maintenance', action: 'terminate' });
    const notice = ((await first) as IteratorResult<ProviderEvent>).value as ProviderEvent;
    expect(notice.type === 'notice' && notice.notice.kind).toBe('maintenance');
    expect(notice.type === 'notice' && notice.notice.raw).toMatchObject({ value: 'TERMINATE_ON_HOST_MAINTENANCE' });
    simulator.clear();
    const withdrawn = ((await iterator.next()) as IteratorResult<ProviderEvent>).value as ProviderEvent;
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: notice.type === 'notice' ? notice.notice.id : '', reason: expect.stringContaining('NONE') });
    await iterator.return?.();
  });

  test('an upcoming maintenance reaches the provider through the hanging GET; clear withdraws it', async () => {
    const iterator = new GcpProvider(options(simulator.url)).watch(context)[Symbol.asyncIterator]();
    const first = iterator.next();
    await untilHanging();
    while (!reads.some((r) => r.source === 'instance/upcoming-maintenance')) await new Promise((resolve) => setTimeout(resolve, 10));
    const windowStart = '2030-01-01T10:00:00Z';
    simulator.trigger({ kind: 'maintenance', action: 'upcoming', time: windowStart, reasons: ['FAILURE_NVLINK'] });
    const shown = ((await first) as IteratorResult<ProviderEvent>).value as ProviderEvent;
    if (shown.type !== 'notice') throw new Error(`expected a notice, got ${JSON.stringify(shown)}`);
    expect(shown.notice).toMatchObject({ kind: 'maintenance', advisory: true, reasons: ['FAILURE_NVLINK'], deadline: new Date(windowStart) });
    expect(shown.notice.raw).toMatchObject({ value: { maintenance_status: 'PENDING', window_end_time: '2030-01-01T11:00:00Z' } });
    simulator.clear();
    const withdrawn = ((await iterator.next()) as IteratorResult<ProviderEvent>).value as ProviderEvent;
    expect(withdrawn).toEqual({ type: 'withdrawn', noticeId: shown.notice.id, reason: 'GCE upcoming maintenance no longer pending' });
    // No read of the key failed.
    expect(reads.filter((r) => r.source === 'instance/upcoming-maintenance').every((r) => r.ok && r.status === 200)).toBe(true);
    await iterator.return?.();
  });

  test('a VM already preempted at start is reported by the first read', async () => {
    simulator.trigger({ kind: 'preempt' });
    const iterator = new GcpProvider(options(simulator.url)).watch(context)[Symbol.asyncIterator]();
    const { value } = (await iterator.next()) as IteratorResult<ProviderEvent>;
    expect(value.type === 'notice' && value.notice.kind).toBe('preempt');
    await iterator.return?.();
  });
});
