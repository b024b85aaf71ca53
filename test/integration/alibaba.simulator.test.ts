import { AlibabaProvider } from '../../src/providers/alibaba/provider.js';
import { detectProvider } from '../../src/providers/detect.js';
import { silentLogger } from '../../src/lib/log.js';
import type { MetadataClient } from '../../src/providers/metadata/client.js';
import { noticeId } from '../../src/notice/notice.js';
import type { SimulatedAlibaba } from '../../src/simulator/alibaba.js';
import type { SimulatedCloudOptions } from '../../src/simulator/cloud.js';
import type { RunningSimulator } from '../../src/simulator/metadata-server.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';
import { TestResources } from '../helpers/resources.js';

const TERMINATION = '/latest/meta-data/instance/spot/termination-time';

describe('Alibaba simulator and provider', () => {
  const resources = new TestResources();
  let simulator: RunningSimulator;
  let client: MetadataClient;

  async function start(metadataTokens?: SimulatedCloudOptions['metadataTokens']) {
    ({ simulator, client } = await resources.simulatorWithClient({ provider: 'alibaba', instanceId: 'i-bp1testsim', ...(metadataTokens ? { metadataTokens } : {}) }));
    return simulator;
  }
  const request = (method: 'GET' | 'PUT', path: string, headers: Record<string, string> = {}) => client.request({ method, path, headers, timeoutMs: 1000 });
  const putToken = (headers: Record<string, string>) => request('PUT', '/latest/api/token', headers);

  test('the token PUT needs a TTL from 1 to 21600 and no X-Forwarded-For; GETs check the token they carry', async () => {
    await start();
    expect((await putToken({})).status).toBe(400);
    expect((await putToken({ 'X-aliyun-ecs-metadata-token-ttl-seconds': '0' })).status).toBe(400);
    expect((await putToken({ 'X-aliyun-ecs-metadata-token-ttl-seconds': '21601' })).status).toBe(400);
    expect((await putToken({ 'X-aliyun-ecs-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '10.1.1.1' })).status).toBe(403);
    const token = await putToken({ 'X-aliyun-ecs-metadata-token-ttl-seconds': '60' });
    expect(token.status).toBe(200);
    const id = await request('GET', '/latest/meta-data/instance-id', { 'X-aliyun-ecs-metadata-token': token.body });
    expect(id).toMatchObject({ status: 200, body: 'i-bp1testsim' });
    expect((await request('GET', '/latest/meta-data/instance-id', { 'X-aliyun-ecs-metadata-token': 'forged' })).status).toBe(401);
    // Tokens are optional by default, as on an instance that has not enforced hardened mode.
    expect((await request('GET', '/latest/meta-data/instance-id')).status).toBe(200);
  });

  test('required tokens refuse plain GETs; unavailable tokens answer the PUT with 404', async () => {
    await start('required');
    expect((await request('GET', '/latest/meta-data/instance-id')).status).toBe(401);
    await start('unavailable');
    expect((await putToken({ 'X-aliyun-ecs-metadata-token-ttl-seconds': '60' })).status).toBe(404);
  });

  test('termination-time is 404 until a trigger, then a whole-second UTC time; clear removes it', async () => {
    await start();
    expect((await request('GET', TERMINATION)).status).toBe(404);
    simulator.trigger({ kind: 'terminate', time: '2031-05-06T07:08:09.123Z' });
    expect(await request('GET', TERMINATION)).toMatchObject({ status: 200, body: '2031-05-06T07:08:09Z' });
    simulator.clear();
    expect((await request('GET', TERMINATION)).status).toBe(404);
    expect(() => simulator.trigger({ kind: 'preempt' })).toThrow('the alibaba simulator cannot show a preempt notice; it can show terminate');
  });

  test.each(['optional', 'required'] as const)('without DMI files, the probes recognise the Alibaba simulator (tokens %s)', async (tokens) => {
    const running = await start(tokens);
    const detection = await detectProvider({ dmiDir: '/nonexistent/preemptd-dmi', probe: true, metadataUrl: running.url, log: silentLogger() });
    expect(detection).toEqual({ provider: 'alibaba', how: expect.stringContaining('zone-id answered "cn-hangzhou-h"') });
  });

  for (const tokens of ['optional', 'required', 'unavailable'] as const) {
    test(`the provider yields a terminate notice with the time as deadline and a stable id (tokens ${tokens})`, async () => {
      const running = await start(tokens);
      const provider = new AlibabaProvider(testProviderOptions(running.url, { pollIntervalMs: 100, alibaba: { hardened: true, tokenTtlSeconds: 21600 }, bootId: 'boot-1' }));
      const recorder = watchRecorder();
      const deadline = new Date(Date.now() + 300_000);
      deadline.setUTCMilliseconds(0);
      setTimeout(() => running.trigger({ kind: 'terminate', time: deadline.toISOString() }), 250);
      const notice = noticeOf((await collectEvents(provider, recorder, 1))[0]);
      expect(notice.kind).toBe('terminate');
      expect(notice.deadline?.getTime()).toBe(deadline.getTime());
      expect(notice.id).toBe(noticeId('alibaba', 'terminate', 'boot-1\0instance/spot/termination-time'));
      expect(notice.instance).toMatchObject({ id: 'i-bp1testsim', type: 'ecs.gn7i-c8g1.2xlarge', zone: 'cn-hangzhou-h', region: 'cn-hangzhou' });
      expect(recorder.reads.filter((read) => read.source === 'instance/spot/termination-time').every((read) => read.ok)).toBe(true);
      expect((running.cloud as SimulatedAlibaba).tokensIssued).toBe(tokens === 'unavailable' ? 0 : 1);
    });
  }
});
