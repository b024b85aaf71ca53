/**
 * The clouds' own clients against the simulator, as people rehearse their applications:
 * AWS's @aws-sdk/ec2-metadata-service and Google's gcp-metadata, pointed at the loopback
 * simulator through their documented endpoint option and environment variable, and the
 * Azure and Alibaba request shapes from their docs. Every outgoing request is watched: none
 * may leave loopback (never 169.254.169.254).
 */
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';

const LOOPBACK = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;
const hostsSeen: string[] = [];
const onHttp = (message: unknown) => {
  const request = (message as { request: ClientRequest }).request;
  hostsSeen.push(String(request.getHeader('host') ?? request.host));
};
const onFetch = (message: unknown) => hostsSeen.push(new URL((message as { request: { origin: string } }).request.origin).host);
beforeAll(() => {
  diagnostics.subscribe('http.client.request.start', onHttp);
  diagnostics.subscribe('undici:request:create', onFetch);
});
afterAll(() => {
  diagnostics.unsubscribe('http.client.request.start', onHttp);
  diagnostics.unsubscribe('undici:request:create', onFetch);
});
afterEach(() => {
  expect(hostsSeen.length).toBeGreaterThan(0);
  expect(hostsSeen.filter((host) => !LOOPBACK.test(host))).toEqual([]);
  hostsSeen.length = 0;
});

describe('AWS: @aws-sdk/ec2-metadata-service', () => {
  let simulator: RunningSimulator;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'aws', instanceId: 'i-0sdk' });
  });
  afterEach(() => simulator.close());

  test('MetadataService gets a token and reads spot/instance-action through the double slash it sends', async () => {
    const { MetadataService } = await import('@aws-sdk/ec2-metadata-service');
    // The endpoint is set at construction, before any request: it never reaches 169.254.169.254.
    const imds = new MetadataService({ endpoint: simulator.url, ec2MetadataV1Disabled: true, retries: 0 });
    expect(await imds.fetchMetadataToken()).toMatch(/\S{20,}/);
    expect(await imds.request('/latest/meta-data/instance-id', {})).toBe('i-0sdk');
    await expect(imds.request('/latest/meta-data/spot/instance-action', {})).rejects.toThrow(/404/);
    simulator.trigger({ kind: 'terminate', time: '2026-12-06T10:00:00Z' });
    const action = JSON.parse(await imds.request('/latest/meta-data/spot/instance-action', {})) as unknown;
    expect(action).toEqual({ action: 'terminate', time: '2026-12-06T10:00:00Z' });
    expect((await imds.request('/latest/meta-data/', {})).split('\n')).toEqual(expect.arrayContaining(['instance-id', 'placement/', 'spot/']));
    expect(simulator.requests.get('/latest/api/token')).toBeGreaterThanOrEqual(4);
    expect(simulator.requests.get('//latest/meta-data/spot/instance-action')).toBe(2);
  });
});

describe('GCP: gcp-metadata', () => {
  let simulator: RunningSimulator;
  let gcp: typeof import('gcp-metadata');
  const saved = { host: process.env.GCE_METADATA_HOST, detection: process.env.METADATA_SERVER_DETECTION };
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'gcp', instanceId: '4520031799277581759' });
    // Set before the first call (gcp-metadata reads it on every request): only the simulator is asked.
    process.env.GCE_METADATA_HOST = new URL(simulator.url).host;
    delete process.env.METADATA_SERVER_DETECTION;
    const module = (await import('gcp-metadata')) as typeof import('gcp-metadata') & { default?: typeof import('gcp-metadata') };
    gcp = module.default ?? module;
    gcp.resetIsAvailableCache();
  });
  afterEach(async () => {
    for (const [name, value] of [['GCE_METADATA_HOST', saved.host], ['METADATA_SERVER_DETECTION', saved.detection]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await simulator.close();
  });

  test('isAvailable() is true: its probe of computeMetadata/v1/instance is answered with the flavor header', async () => {
    expect(await gcp.isAvailable()).toBe(true);
    expect(simulator.requests.get('/computeMetadata/v1/instance')).toBe(1);
    // Moved to the directory, as GCE does; the client followed with its header.
    expect(simulator.requests.get('/computeMetadata/v1/instance/')).toBe(1);
  });

  test("instance('preempted') reads FALSE, then TRUE once preempted", async () => {
    expect(await gcp.instance('preempted')).toBe('FALSE');
    simulator.trigger({ kind: 'preempt' });
    expect(await gcp.instance('preempted')).toBe('TRUE');
    expect(simulator.requests.get('/computeMetadata/v1/instance/preempted')).toBe(2);
  });

  test('instance() recursive gives the whole instance directory as JSON with camelCase keys', async () => {
    simulator.trigger({ kind: 'maintenance', action: 'terminate' });
    const instance = (await gcp.instance({ params: { recursive: 'true' } })) as Record<string, unknown>;
    expect(instance).toMatchObject({
      preempted: 'FALSE',
      maintenanceEvent: 'TERMINATE_ON_HOST_MAINTENANCE',
      machineType: 'projects/123456789012/machineTypes/g2-standard-4',
      scheduling: { preemptible: 'TRUE', provisioningModel: 'SPOT' },
    });
    // The id is a number too large for a double, as on GCE: gcp-metadata parses it with json-bigint.
    expect(String(instance.id)).toBe('4520031799277581759');
  });

  test('a hanging GET through gcp-metadata returns when the VM is preempted', async () => {
    const answer = gcp.instance({ property: 'preempted', params: { wait_for_change: 'true', timeout_sec: '30' } });
    while (!simulator.requests.has('/computeMetadata/v1/instance/preempted')) await new Promise((resolve) => setTimeout(resolve, 5));
    simulator.trigger({ kind: 'preempt' });
    expect(await answer).toBe('TRUE');
  });
});

describe('Azure: Scheduled Events as the docs call them', () => {
  let simulator: RunningSimulator;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'azure', instanceName: 'vmname_0' });
  });
  afterEach(() => simulator.close());
  const events = (init: RequestInit = {}) => fetch(`${simulator.url}/metadata/scheduledevents?api-version=2020-07-01`, { ...init, headers: { Metadata: 'true' } });

  test('GET with Metadata: true shows a Preempt event; POST StartRequests starts it', async () => {
    simulator.trigger({ kind: 'preempt' });
    const document = (await (await events()).json()) as { DocumentIncarnation: number; Events: Array<Record<string, unknown>> };
    expect(document.Events).toEqual([expect.objectContaining({ EventType: 'Preempt', EventStatus: 'Scheduled', Resources: ['vmname_0'], ResourceType: 'VirtualMachine' })]);
    const eventId = document.Events[0]!.EventId as string;
    const ack = await events({ method: 'POST', body: JSON.stringify({ StartRequests: [{ EventId: eventId }] }) });
    expect(ack.status).toBe(200);
    const started = (await (await events()).json()) as { DocumentIncarnation: number; Events: Array<Record<string, unknown>> };
    expect(started.Events[0]).toMatchObject({ EventId: eventId, EventStatus: 'Started', NotBefore: '' });
    expect(started.DocumentIncarnation).toBeGreaterThan(document.DocumentIncarnation);
  });

  test('an api-version IMDS does not have is refused with 400 and the newest versions', async () => {
    const response = await fetch(`${simulator.url}/metadata/scheduledevents?api-version=2099-01-01`, { headers: { Metadata: 'true' } });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: expect.stringContaining('api-version 2099-01-01 is invalid'),
      'newest-versions': ['2020-07-01', '2019-08-01', '2019-04-01'],
    });
    const instance = await fetch(`${simulator.url}/metadata/instance?api-version=2021-02-01`, { headers: { Metadata: 'true' } });
    expect(((await instance.json()) as { compute: { name: string } }).compute.name).toBe('vmname_0');
  });
});

describe('Alibaba: hardened mode as the docs call it', () => {
  let simulator: RunningSimulator;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'alibaba', metadataTokens: 'required' });
  });
  afterEach(() => simulator.close());

  test('PUT a token with its TTL header, then GET the listing and the termination time with the token header', async () => {
    const token = await (await fetch(`${simulator.url}/latest/api/token`, { method: 'PUT', headers: { 'X-aliyun-ecs-metadata-token-ttl-seconds': '21600' } })).text();
    const get = (path: string) => fetch(`${simulator.url}/latest/meta-data/${path}`, { headers: { 'X-aliyun-ecs-metadata-token': token } });
    expect((await get('instance/spot/termination-time')).status).toBe(404);
    simulator.trigger({ kind: 'terminate', time: '2026-12-06T10:05:00Z' });
    expect(await (await get('instance/spot/termination-time')).text()).toBe('2026-12-06T10:05:00Z');
    expect((await (await get('')).text()).split('\n')).toEqual(expect.arrayContaining(['instance-id', 'instance/', 'region-id']));
    expect(await (await get('instance/')).text()).toBe('instance-type\nspot/');
    expect((await fetch(`${simulator.url}/latest/meta-data/instance-id`)).status).toBe(401);
  });
});
