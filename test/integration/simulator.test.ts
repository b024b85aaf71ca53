import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';
import { parseAwsEventDate } from '../../src/providers/aws/payloads.js';

describe('AWS metadata simulator', () => {
  let simulator: RunningSimulator;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'aws', instanceId: 'i-0sim' });
  });
  afterEach(() => simulator.close());

  const put = (ttl?: string, headers: Record<string, string> = {}, path = '/latest/api/token') =>
    fetch(`${simulator.url}${path}`, { method: 'PUT', headers: { ...(ttl === undefined ? {} : { 'X-aws-ec2-metadata-token-ttl-seconds': ttl }), ...headers } });
  const token = async (ttl = '60') => (await put(ttl)).text();
  const get = (path: string, tokenValue?: string) =>
    fetch(`${simulator.url}/latest/meta-data/${path}`, { headers: tokenValue === undefined ? {} : { 'X-aws-ec2-metadata-token': tokenValue } });

  test.each([[undefined], ['0'], ['21601'], ['abc'], ['-5']])('a token PUT with TTL %s is refused with 400', async (ttl) => {
    expect((await put(ttl)).status).toBe(400);
  });

  test('a token PUT through a proxy (X-Forwarded-For) or to a versioned path is refused with 403', async () => {
    expect((await put('60', { 'X-Forwarded-For': '10.0.0.1' })).status).toBe(403);
    expect((await put('60', {}, '/2021-03-23/api/token')).status).toBe(403);
  });

  test('a token PUT answers the token and echoes its TTL; GETs need it', async () => {
    const response = await put('21600');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe('21600');
    const value = await response.text();
    expect(value.length).toBeGreaterThan(20);
    expect((await get('instance-id')).status).toBe(401);
    expect((await get('instance-id', 'not-a-token')).status).toBe(401);
    const ok = await get('instance-id', value);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('i-0sim');
  });

  test('an expired token is refused with 401', async () => {
    const value = await token('1');
    expect((await get('instance-id', value)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await get('instance-id', value)).status).toBe(401);
  });

  test('absent items are 404 with an XHTML page, not JSON', async () => {
    const response = await get('spot/instance-action', await token());
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('text/html');
    expect(await response.text()).toContain('<title>404 - Not Found</title>');
  });

  test('instance facts and directory listings are served', async () => {
    const value = await token();
    expect(await (await get('placement/availability-zone', value)).text()).toBe('us-east-1a');
    expect(await (await get('instance-life-cycle', value)).text()).toBe('spot');
    expect((await (await get('placement/', value)).text()).split('\n')).toEqual(['availability-zone', 'region']);
  });

  test('a terminate trigger shows instance-action (time = now + lead) and termination-time, and clear removes them', async () => {
    const value = await token();
    const before = Date.now();
    simulator.trigger({ kind: 'terminate', leadMs: 120_000 });
    const action = (await (await get('spot/instance-action', value)).json()) as { action: string; time: string };
    expect(action.action).toBe('terminate');
    expect(action.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(Date.parse(action.time)).toBeGreaterThanOrEqual(Math.floor((before + 120_000) / 1000) * 1000);
    expect(await (await get('spot/termination-time', value)).text()).toBe(action.time);
    simulator.clear();
    expect((await get('spot/instance-action', value)).status).toBe(404);
  });

  test.each(['stop', 'hibernate'] as const)('a %s trigger shows that action', async (kind) => {
    simulator.trigger({ kind });
    expect(await (await get('spot/instance-action', await token())).json()).toMatchObject({ action: kind });
  });

  test('a rebalance trigger shows a noticeTime', async () => {
    simulator.trigger({ kind: 'rebalance' });
    const body = (await (await get('events/recommendations/rebalance', await token())).json()) as { noticeTime: string };
    expect(Number.isNaN(Date.parse(body.noticeTime))).toBe(false);
  });

  test('a maintenance trigger lists an event with AWS dates and an EventId; clear marks it canceled', async () => {
    const value = await token();
    simulator.trigger({ kind: 'maintenance', time: '2026-12-01T10:20:30Z' });
    const [event] = (await (await get('events/maintenance/scheduled', value)).json()) as Array<Record<string, string>>;
    expect(event).toMatchObject({ NotBefore: '1 Dec 2026 10:20:30 GMT', Code: 'system-reboot', State: 'active' });
    expect(event!.EventId).toMatch(/^instance-event-[0-9a-f]{17}$/);
    expect(parseAwsEventDate(event!.NotAfter!)).toBeDefined();
    simulator.clear();
    const [canceled] = (await (await get('events/maintenance/scheduled', value)).json()) as Array<Record<string, string>>;
    expect(canceled).toMatchObject({ EventId: event!.EventId, State: 'canceled' });
  });

  test('a kind AWS does not have is refused by the control API with a clear message', async () => {
    const response = await fetch(`${simulator.url}/_simulator/trigger`, { method: 'POST', body: JSON.stringify({ kind: 'preempt' }) });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('the aws simulator cannot show a preempt notice; it can show terminate, stop, hibernate, rebalance, maintenance');
  });
});

describe('GCP metadata simulator', () => {
  let simulator: RunningSimulator;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'gcp', instanceId: '9001' });
  });
  afterEach(() => simulator.close());

  const get = (path: string, flavor = true) => fetch(`${simulator.url}/computeMetadata/v1/${path}`, { headers: flavor ? { 'Metadata-Flavor': 'Google' } : {} });
  /** Resolves once the simulator has received `count` requests for `path`: the last one, if hanging, now waits there. */
  const received = async (path: string, count: number) => {
    while ((simulator.requests.get(`/computeMetadata/v1/${path}`) ?? 0) < count) await new Promise((resolve) => setTimeout(resolve, 5));
  };

  test('a request without Metadata-Flavor: Google is refused with 403 and a body saying why', async () => {
    const response = await get('instance/id', false);
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('Missing Metadata-Flavor:Google header');
  });

  test('answers carry Metadata-Flavor: Google and an ETag that changes with the value', async () => {
    const before = await get('instance/preempted');
    expect(before.headers.get('metadata-flavor')).toBe('Google');
    expect(await before.text()).toBe('FALSE');
    const etag = before.headers.get('etag');
    expect(etag).toBeTruthy();
    expect((await get('instance/preempted')).headers.get('etag')).toBe(etag);
    simulator.trigger({ kind: 'preempt' });
    const after = await get('instance/preempted');
    expect(await after.text()).toBe('TRUE');
    expect(after.headers.get('etag')).not.toBe(etag);
  });

  test('a hanging GET is answered the moment the value changes', async () => {
    const etag = (await get('instance/maintenance-event')).headers.get('etag')!;
    let answered = false;
    const hanging = get(`instance/maintenance-event?wait_for_change=true&last_etag=${etag}&timeout_sec=30`).then(async (response) => {
      answered = true;
      return response.text();
    });
    await received('instance/maintenance-event', 2);
    expect(answered).toBe(false);
    simulator.trigger({ kind: 'maintenance', action: 'terminate' });
    await expect(hanging).resolves.toBe('TERMINATE_ON_HOST_MAINTENANCE');
    simulator.clear();
    expect(await (await get('instance/maintenance-event')).text()).toBe('NONE');
  });

  test('a hanging GET with a stale ETag answers at once, and one without change answers at timeout_sec', async () => {
    expect(await (await get('instance/preempted?wait_for_change=true&last_etag=stale&timeout_sec=30')).text()).toBe('FALSE');
    const etag = (await get('instance/preempted')).headers.get('etag')!;
    const response = await get(`instance/preempted?wait_for_change=true&last_etag=${etag}&timeout_sec=1`);
    expect(response.headers.get('etag')).toBe(etag);
    expect(await response.text()).toBe('FALSE');
  });

  test('closing the simulated cloud answers hanging GETs with the current value', async () => {
    const etag = (await get('instance/preempted')).headers.get('etag')!;
    const hanging = get(`instance/preempted?wait_for_change=true&last_etag=${etag}&timeout_sec=300`);
    await received('instance/preempted', 2);
    simulator.cloud.close();
    const response = await hanging;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('FALSE');
  });

  test('instance facts look like a GCE Spot VM', async () => {
    expect(await (await get('instance/id')).text()).toBe('9001');
    expect(await (await get('instance/zone')).text()).toMatch(/^projects\/\d+\/zones\/[a-z0-9-]+$/);
    expect(await (await get('instance/scheduling/provisioning-model')).text()).toBe('SPOT');
    expect((await get('instance/nothing-here')).status).toBe(404);
  });
});
