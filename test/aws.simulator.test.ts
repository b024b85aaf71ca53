import { AwsProvider } from '../src/providers/aws.js';
import type { MetadataRead, ProviderEvent, ProviderOptions } from '../src/providers/provider.js';
import { silentLogger } from '../src/log.js';
import { startSimulator, type RunningSimulator } from '../src/simulator/server.js';

function options(baseUrl: string): ProviderOptions {
  return {
    baseUrl,
    pollIntervalMs: 50,
    requestTimeoutMs: 1000,
    aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 1000 },
    gcp: { hangTimeoutSeconds: 5 },
  };
}

describe('AWS provider against the simulator', () => {
  let simulator: RunningSimulator;
  let controller: AbortController;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'aws', instanceId: 'i-0feedfacecafe0001' });
    controller = new AbortController();
  });
  afterEach(async () => {
    controller.abort();
    await simulator.close();
  });

  async function collect(provider: AwsProvider, count: number, reads: MetadataRead[] = []): Promise<ProviderEvent[]> {
    const events: ProviderEvent[] = [];
    for await (const event of provider.watch({ signal: controller.signal, log: silentLogger(), onRead: (read) => reads.push(read) })) {
      events.push(event);
      if (events.length === count) break;
    }
    return events;
  }

  test('a triggered terminate notice is yielded once with its deadline and instance facts', async () => {
    const provider = new AwsProvider(options(simulator.url));
    const reads: MetadataRead[] = [];
    const time = new Date(Date.now() + 120_000);
    time.setUTCMilliseconds(0);
    setTimeout(() => simulator.trigger({ kind: 'terminate', time: time.toISOString() }), 150);
    const [event] = await collect(provider, 1, reads);
    expect(event?.type).toBe('notice');
    if (event?.type !== 'notice') return;
    expect(event.notice.kind).toBe('terminate');
    expect(event.notice.deadline?.getTime()).toBe(time.getTime());
    expect(event.notice.instance).toMatchObject({ id: 'i-0feedfacecafe0001', type: 'g5.xlarge', zone: 'us-east-1a', region: 'us-east-1', lifecycle: 'spot' });
    expect(event.notice.id).toMatch(/^aws-terminate-[0-9a-f]{16}$/);
    expect(reads.some((read) => read.source === 'spot/instance-action' && read.status === 404)).toBe(true);
    expect(reads.every((read) => read.ok)).toBe(true);
  });
});
