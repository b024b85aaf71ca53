import { TencentProvider } from '../../src/providers/tencent/provider.js';
import { detectProvider } from '../../src/providers/detect.js';
import { silentLogger } from '../../src/lib/log.js';
import type { MetadataClient } from '../../src/providers/metadata/client.js';
import { noticeId } from '../../src/notice/notice.js';
import type { RunningSimulator } from '../../src/simulator/metadata-server.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';
import { TestResources } from '../helpers/resources.js';

const TERMINATION = '/latest/meta-data/spot/termination-time';

describe('Tencent simulator and provider', () => {
  const resources = new TestResources();
  let simulator: RunningSimulator;
  let client: MetadataClient;

  beforeEach(async () => {
    ({ simulator, client } = await resources.simulatorWithClient({ provider: 'tencent', instanceId: 'ins-testsim1' }));
  });
  const request = (method: 'GET' | 'PUT', path: string) => client.request({ method, path, timeoutMs: 1000 });

  test('termination-time is 404 until a trigger, then whole seconds in UTC+8 with no zone; clear removes it', async () => {
    expect((await request('GET', TERMINATION)).status).toBe(404);
    simulator.trigger({ kind: 'terminate', time: '2031-05-06T20:08:09.123Z' });
    expect(await request('GET', TERMINATION)).toMatchObject({ status: 200, body: '2031-05-07 04:08:09' });
    simulator.clear();
    expect((await request('GET', TERMINATION)).status).toBe(404);
    expect(() => simulator.trigger({ kind: 'preempt' })).toThrow('the tencent simulator cannot show a preempt notice; it can show terminate');
    // No session tokens: a PUT is not a metadata request there.
    expect((await request('PUT', '/latest/api/token')).status).not.toBe(200);
  });

  test('lists directories as the real service does, the termination time among them only while it is set', async () => {
    expect(await request('GET', '/latest/meta-data/placement')).toMatchObject({ status: 200, body: 'region\nzone' });
    expect((await request('GET', '/latest/meta-data/spot/')).status).toBe(404);
    simulator.trigger({ kind: 'terminate' });
    expect(await request('GET', '/latest/meta-data/spot/')).toMatchObject({ status: 200, body: 'termination-time' });
    expect((await request('GET', '/latest/meta-data/')).body.split('\n')).toEqual(['instance-id', 'instance-name', 'instance/', 'placement/', 'spot/']);
  });

  test('without DMI files, the probes recognise the Tencent simulator', async () => {
    const detection = await detectProvider({ dmiDir: '/nonexistent/preemptd-dmi', probe: true, metadataUrl: simulator.url, log: silentLogger() });
    expect(detection).toEqual({ provider: 'tencent', how: expect.stringContaining('placement/zone answered "ap-guangzhou-3"') });
  });

  test('the provider yields a terminate notice due at the UTC+8 time read as UTC, with a stable id and the instance facts', async () => {
    const provider = new TencentProvider(testProviderOptions(simulator.url, { pollIntervalMs: 100, bootId: 'boot-1' }));
    const recorder = watchRecorder();
    const deadline = new Date(Date.now() + 120_000);
    deadline.setUTCMilliseconds(0);
    const watching = collectEvents(provider, recorder, 1);
    await recorder.readMatching((read) => read.source === 'spot/termination-time' && read.status === 404);
    simulator.trigger({ kind: 'terminate', time: deadline.toISOString() });
    const notice = noticeOf((await watching)[0]);
    expect(notice).toMatchObject({ provider: 'tencent', kind: 'terminate' });
    expect(notice.deadline?.getTime()).toBe(deadline.getTime());
    expect(notice.id).toBe(noticeId('tencent', 'terminate', 'boot-1\0spot/termination-time'));
    expect(notice.instance).toMatchObject({ id: 'ins-testsim1', name: 'preemptd-sim', zone: 'ap-guangzhou-3', region: 'ap-guangzhou' });
    expect(recorder.reads.every((read) => read.ok)).toBe(true);
  });
});
