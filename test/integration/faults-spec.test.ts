import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { MetadataRequestError, PreemptdError } from '../../src/lib/errors.js';
import type { ProviderName } from '../../src/notice/notice.js';
import { AlibabaProvider } from '../../src/providers/alibaba/provider.js';
import { AwsProvider } from '../../src/providers/aws/provider.js';
import { GcpProvider } from '../../src/providers/gcp/provider.js';
import type { MetadataClient, MetadataResponse } from '../../src/providers/metadata/client.js';
import { withWrongTypes } from '../../src/simulator/faults.js';
import { formatFaultSpec, loadFaultSpec, NO_FAULTS, parseFaultSpec } from '../../src/simulator/fault-spec.js';
import type { RunningSimulator } from '../../src/simulator/metadata-server.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';
import { TestResources } from '../helpers/resources.js';

const resources = new TestResources('preemptd-faults-');

function usageMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PreemptdError);
    expect((error as PreemptdError).code).toBe('ERR_USAGE');
    return (error as Error).message;
  }
  throw new Error('expected ERR_USAGE');
}

describe('fault spec', () => {
  test('entries read name[=value][:rate]; the rate defaults to 1 and may be a percentage', () => {
    expect(parseFaultSpec('500:0.1, reset:5%,hang-token,drip=50ms:0.2').entries).toEqual([
      { name: '500', rate: 0.1 },
      { name: 'reset', rate: 0.05 },
      { name: 'hang-token', rate: 1 },
      { name: 'drip', rate: 0.2, paramMs: 50 },
    ]);
  });

  test('files may hold one entry per line with # comments, and the spec prints back in its own syntax', () => {
    const spec = parseFaultSpec('# a bad day\n503:0.25\nnotice-past=5m   # stale notice\n');
    expect(spec.entries).toEqual([
      { name: '503', rate: 0.25 },
      { name: 'notice-past', rate: 1, paramMs: 300_000 },
    ]);
    expect(formatFaultSpec(spec)).toBe('503:0.25,notice-past=5m0s');
    expect(parseFaultSpec('').entries).toEqual([]);
  });

  test.each([
    ['50O:0.1', /unknown fault "50O"; expected one of 500, 503, 429/],
    ['500:1.5', /rate "1.5" is not a chance between 0 and 1 \(or a percentage such as 10%\)/],
    ['500:', /rate "" is not a chance/],
    ['reset=3s', /fault reset takes no =value/],
    ['drip=fast', /got "fast": expected a duration such as 500ms/],
    ['drip=200', /got "200": a duration needs a unit: write 200s for seconds \(or 200ms/],
    ['500:0.1,500:0.2', /fault 500 is given twice/],
    ['500 503', /expected name\[=value\]\[:rate\]/],
    ['notice-past,notice-future', /notice-past and notice-future cannot both be given/],
  ])('%s is refused with a message naming the entry and what was expected', (spec, message) => {
    expect(usageMessage(() => parseFaultSpec(spec))).toMatch(message);
  });

  test('@file reads the spec from a file and names the file when it is wrong or missing', async () => {
    const dir = resources.tempDir();
    writeFileSync(join(dir, 'good'), 'html:0.5\n');
    writeFileSync(join(dir, 'bad'), 'htm:0.5\n');
    expect((await loadFaultSpec(`@${join(dir, 'good')}`)).entries).toEqual([{ name: 'html', rate: 0.5 }]);
    await expect(loadFaultSpec(`@${join(dir, 'bad')}`)).rejects.toThrow(`${join(dir, 'bad')}: fault spec entry "htm:0.5": unknown fault`);
    await expect(loadFaultSpec(`@${join(dir, 'none')}`)).rejects.toThrow(/cannot read fault spec file .*none/);
  });

  test('wrong types swap every value for another type, keeping the shape', () => {
    expect(withWrongTypes({ action: 'terminate', time: '2030-01-01T00:00:00Z', n: 3, ok: true, list: ['a'], none: null })).toEqual({
      action: 9,
      time: 20,
      n: '3',
      ok: 'yes',
      list: { '0': 1 },
      none: {},
    });
  });
});

describe('the simulator in fault mode', () => {
  let simulator: RunningSimulator;
  let client: MetadataClient;

  async function start(provider: ProviderName, spec: string): Promise<MetadataClient> {
    // IMDSv1 allowed, so plain GETs reach the AWS paths without a token.
    ({ simulator, client } = await resources.simulatorWithClient({ provider, faults: parseFaultSpec(spec), metadataTokens: 'optional' }));
    return client;
  }

  const awsGet = (metadata: MetadataClient, path: string, timeoutMs = 1000) => metadata.request({ path: `/latest/meta-data/${path}`, timeoutMs });

  test.each([
    ['500', 500],
    ['503', 503],
    ['429', 429],
    ['401', 401],
  ])('%s answers HTTP %i with an error page', async (spec, status) => {
    const response = await awsGet(await start('aws', spec), 'instance-id');
    expect(response.status).toBe(status);
    expect(response.body).toContain(`<h1>${status}`);
    expect(response.headers['retry-after']).toBeUndefined();
    expect(simulator.faults.applied.get(spec as '500')).toBe(1);
  });

  test('a fault with a rate hits the requests whose draw falls below it, drawn from the random source it was given', async () => {
    const draws = [0.9, 0.1, 0.5, 0.49];
    ({ simulator, client } = await resources.simulatorWithClient({
      provider: 'aws',
      faults: parseFaultSpec('500:0.5'),
      metadataTokens: 'optional',
      random: () => draws.shift() ?? 1,
    }));
    const statuses = [];
    for (let index = 0; index < 4; index++) statuses.push((await awsGet(client, 'instance-id')).status);
    expect(statuses).toEqual([200, 500, 200, 500]);
    expect(simulator.faults.applied.get('500')).toBe(2);
  });

  test('429-retry-after carries Retry-After in whole seconds', async () => {
    const response = await awsGet(await start('aws', '429-retry-after=2500ms'), 'instance-id');
    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('3');
  });

  test('reset closes the connection without an answer, and hang never answers', async () => {
    await expect(awsGet(await start('aws', 'reset'), 'instance-id')).rejects.toMatchObject({ kind: 'connection_reset' });
    simulator.faults.set(parseFaultSpec('hang'));
    await expect(awsGet(client, 'instance-id', 300)).rejects.toMatchObject({ kind: 'timeout' });
  });

  test('hang-token hangs only the token PUT, and 401 never hits it', async () => {
    const metadata = await start('aws', 'hang-token,401:0');
    const put = metadata.request({ method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, timeoutMs: 300 });
    await expect(put).rejects.toBeInstanceOf(MetadataRequestError);
    // A GET is untouched: the cloud answers it.
    expect((await awsGet(metadata, 'instance-id')).status).toBe(200);
    expect(simulator.faults.applied.get('hang-token')).toBe(1);
    simulator.faults.set(parseFaultSpec('401'));
    const token = await metadata.request({ method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, timeoutMs: 1000 });
    expect(token.status).toBe(200);
  });

  test('drip sends the real answer one byte at a time', async () => {
    const metadata = await start('gcp', 'drip=20ms');
    const started = Date.now();
    const response = await metadata.request({ path: '/computeMetadata/v1/instance/preempted', headers: { 'Metadata-Flavor': 'Google' }, timeoutMs: 2000 });
    expect(response.body).toBe('FALSE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(80);
    await expect(metadata.request({ path: '/computeMetadata/v1/instance/id', headers: { 'Metadata-Flavor': 'Google' }, timeoutMs: 100 })).rejects.toMatchObject({ kind: 'timeout' });
  });

  test('endless sends a body that never ends: the client stops at its 1 MiB cap', async () => {
    const metadata = await start('aws', 'endless');
    await expect(awsGet(metadata, 'instance-id', 5000)).rejects.toMatchObject({ kind: 'body_too_large', code: 'ERR_METADATA_BODY' });
    expect(simulator.faults.applied.get('endless')).toBe(1);
  });

  test('redirect answers 302 to another host, which the client does not follow', async () => {
    const metadata = await start('gcp', 'redirect');
    const response = await metadata.request({ path: '/computeMetadata/v1/instance/preempted', headers: { 'Metadata-Flavor': 'Google' }, timeoutMs: 1000 });
    expect(response.status).toBe(302);
    expect(response.headers.location).toMatch(/^http:\/\/127\.0\.0\.2:\d+\/computeMetadata\/v1\/instance\/preempted$/);
  });

  test('truncated, wrong-types and html answer 200 with bodies no parser should accept', async () => {
    const metadata = await start('azure', 'truncated');
    const get = () => metadata.request({ path: '/metadata/scheduledevents?api-version=2020-07-01', headers: { Metadata: 'true' }, timeoutMs: 1000 });
    const truncated = await get();
    expect(truncated.status).toBe(200);
    expect(() => JSON.parse(truncated.body)).toThrow();
    simulator.faults.set(parseFaultSpec('wrong-types'));
    expect(JSON.parse((await get()).body)).toEqual({ DocumentIncarnation: '1', Events: {} });
    simulator.faults.set(parseFaultSpec('html'));
    const html = await get();
    expect([html.status, html.headers['content-type']]).toEqual([200, 'text/html']);
    expect(html.body).toMatch(/^<!DOCTYPE html>/);
  });

  test.each([
    ['aws', 'terminate', '/latest/meta-data/spot/instance-action', {}, (response: MetadataResponse) => response.status === 404],
    ['gcp', 'preempt', '/computeMetadata/v1/instance/preempted', { 'Metadata-Flavor': 'Google' }, (response: MetadataResponse) => response.body === 'FALSE'],
    ['azure', 'preempt', '/metadata/scheduledevents?api-version=2020-07-01', { Metadata: 'true' }, (response: MetadataResponse) => JSON.parse(response.body).Events.length === 0],
    ['alibaba', 'terminate', '/latest/meta-data/instance/spot/termination-time', {}, (response: MetadataResponse) => response.status === 404],
  ] as const)('flicker makes a %s notice disappear from the answer', async (provider, kind, path, headers, quiet) => {
    const metadata = await start(provider, 'flicker');
    simulator.trigger({ kind });
    const response = await metadata.request({ path, headers, timeoutMs: 1000 });
    expect(quiet(response)).toBe(true);
    expect(simulator.faults.applied.get('flicker')).toBe(1);
    simulator.faults.set(NO_FAULTS);
    const real = await metadata.request({ path, headers, timeoutMs: 1000 });
    expect(quiet(real)).toBe(false);
  });

  test('notice-past and notice-future move the time of a triggered notice', async () => {
    const metadata = await start('alibaba', 'notice-past=10m');
    const read = async () => Date.parse((await metadata.request({ path: '/latest/meta-data/instance/spot/termination-time', timeoutMs: 1000 })).body);
    simulator.trigger({ kind: 'terminate' });
    expect(Date.now() - (await read())).toBeGreaterThan(9 * 60_000);
    simulator.faults.set(parseFaultSpec('notice-future'));
    simulator.trigger({ kind: 'terminate' });
    expect((await read()) - Date.now()).toBeGreaterThan(9 * 365 * 86_400_000);
  });

  test('POST /_simulator/faults sets the fault mode and refuses a bad spec with 400', async () => {
    const metadata = await start('aws', '');
    const control = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const request = http.request(`${simulator.url}/_simulator/faults`, { method: 'POST' }, (response) => {
          let text = '';
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, body: text }));
        });
        request.on('error', reject);
        request.end(body);
      });
    expect((await control('503')).status).toBe(204);
    expect((await awsGet(metadata, 'instance-id')).status).toBe(503);
    const refused = await control('503:2');
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('rate "2" is not a chance');
    expect((await control('')).status).toBe(204);
    expect((await awsGet(metadata, 'instance-id')).status).toBe(200);
  });
});

describe('preemptd simulator --faults', () => {
  test('a bad spec exits 64 with the reason before anything listens', () => {
    const cli = join(process.cwd(), 'dist', 'src', 'cli.js');
    const result = spawnSync(process.execPath, [cli, 'simulator', '--port', '0', '--faults', '500:0.1,bogus'], { encoding: 'utf8', timeout: 10_000 });
    expect(result.status).toBe(64);
    expect(result.stderr).toContain('fault spec entry "bogus": unknown fault "bogus"');
  });
});

describe('bugs the fault mode found', () => {
  test.each([
    ['aws', (url: string) => new AwsProvider(testProviderOptions(url, { requestTimeoutMs: 300 }))],
    ['alibaba', (url: string) => new AlibabaProvider(testProviderOptions(url, { requestTimeoutMs: 300 }))],
  ] as const)('%s: a proxy page answered to the token PUT is not kept as the token, so polling recovers at once', async (provider, create) => {
    // Before the fix the page became the token; every GET then failed (invalid header) for 80 % of the token TTL.
    const simulator = await resources.simulator({ provider, faults: parseFaultSpec('html') });
    const recorder = watchRecorder();
    // The page goes away, and the notice comes, once the provider has been given it.
    const pageSeen = recorder.readMatching((read) => !read.ok && /not a token/.test(read.error ?? '')).then(() => {
      simulator.faults.set(NO_FAULTS);
      simulator.trigger({ kind: 'terminate' });
    });
    const [events] = await Promise.all([collectEvents(create(simulator.url), recorder, 1, 8000), pageSeen]);
    expect(noticeOf(events[0]).kind).toBe('terminate');
    expect(recorder.reads.some((read) => !read.ok && /not a token/.test(read.error ?? ''))).toBe(true);
  });

  test('gcp: a maintenance-event value cut short (NO) is a bad body, not a maintenance notice', async () => {
    // Before the fix any capitalised word was accepted: a truncated NONE became a maintenance notice.
    const simulator = await resources.simulator({ provider: 'gcp', faults: parseFaultSpec('truncated') });
    const recorder = watchRecorder();
    // The answers are whole again, and the VM is preempted, once the provider has read a cut one.
    const cutSeen = recorder.readMatching((read) => read.source === 'instance/maintenance-event' && /expected NONE or a value such as/.test(read.error ?? '')).then(() => {
      simulator.faults.set(NO_FAULTS);
      simulator.trigger({ kind: 'preempt' });
    });
    const [events] = await Promise.all([collectEvents(new GcpProvider(testProviderOptions(simulator.url, { requestTimeoutMs: 300 })), recorder, 1, 8000), cutSeen]);
    expect(noticeOf(events[0]).kind).toBe('preempt');
    expect(recorder.reads.some((read) => read.source === 'instance/maintenance-event' && /expected NONE or a value such as/.test(read.error ?? ''))).toBe(true);
  });
});
