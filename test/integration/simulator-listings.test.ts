/** What the simulated services serve beyond single values: directories, moved paths, headers. */
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';

describe('GCP simulator: directories and headers', () => {
  let simulator: RunningSimulator;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'gcp', instanceId: '4520031799277581759' });
  });
  afterEach(() => simulator.close());
  const get = (path: string, headers: Record<string, string> = { 'Metadata-Flavor': 'Google' }) =>
    fetch(`${simulator.url}/computeMetadata/v1/${path}`, { headers, redirect: 'manual' });

  test('a directory lists its entries (sub-directories with a slash), as text or with alt=json as an array, with an ETag', async () => {
    const root = await get('');
    expect(await root.text()).toBe('instance/\nproject/\n');
    const instance = await get('instance/');
    expect(instance.headers.get('metadata-flavor')).toBe('Google');
    expect(instance.headers.get('content-type')).toBe('application/text');
    expect(instance.headers.get('etag')).toMatch(/^[0-9a-f]{16}$/);
    expect((await instance.text()).split('\n')).toEqual(expect.arrayContaining(['id', 'maintenance-event', 'preempted', 'scheduling/']));
    const json = await get('instance/scheduling/?alt=json');
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(await json.json()).toEqual(['preemptible', 'provisioning-model']);
  });

  test('recursive gives JSON with camelCase keys, or path-value lines with alt=text; a value with alt=json is a JSON string', async () => {
    expect(await (await get('instance/scheduling/?recursive=true')).json()).toEqual({ preemptible: 'TRUE', provisioningModel: 'SPOT' });
    expect(await (await get('instance/scheduling?recursive=true&alt=text')).text()).toBe('preemptible TRUE\nprovisioning-model SPOT\n');
    expect(await (await get('project/?recursive=true')).text()).toBe('{"numericProjectId":123456789012,"projectId":"demo-project"}');
    expect(await (await get('instance/preempted?alt=json')).text()).toBe('"FALSE"');
  });

  test('a directory asked for without its slash is moved there, query kept; a missing key is 404', async () => {
    const moved = await get('instance?alt=json');
    expect(moved.status).toBe(301);
    expect(moved.headers.get('location')).toBe('/computeMetadata/v1/instance/?alt=json');
    expect(moved.headers.get('metadata-flavor')).toBe('Google');
    expect((await fetch(`${simulator.url}/computeMetadata/v1`, { headers: { 'Metadata-Flavor': 'Google' }, redirect: 'manual' })).headers.get('location')).toBe('/computeMetadata/v1/');
    expect((await get('instance/nothing-here')).status).toBe(404);
  });

  test('without Metadata-Flavor: Google a listing is refused with 403, the answer still carrying the flavor header', async () => {
    const refused = await get('instance/', {});
    expect(refused.status).toBe(403);
    expect(refused.headers.get('metadata-flavor')).toBe('Google');
    expect(await refused.text()).toContain('Missing Metadata-Flavor:Google header');
  });

  test('a hanging GET on a recursive directory returns when a key below it changes', async () => {
    const first = await get('instance/?recursive=true');
    const etag = first.headers.get('etag')!;
    const hanging = get(`instance/?recursive=true&wait_for_change=true&timeout_sec=30&last_etag=${etag}`);
    while (simulator.requests.get('/computeMetadata/v1/instance/') !== 2) await new Promise((resolve) => setTimeout(resolve, 5));
    simulator.trigger({ kind: 'preempt' });
    const changed = await hanging;
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(await changed.json()).toMatchObject({ preempted: 'TRUE' });
  });
});

describe('AWS simulator: the paths IMDS serves', () => {
  let simulator: RunningSimulator;
  beforeEach(async () => {
    simulator = await startSimulator({ provider: 'aws', instanceId: 'i-0list' });
  });
  afterEach(() => simulator.close());

  test('the token answer carries its TTL; //latest/... is served as /latest/...; meta-data lists with or without its slash', async () => {
    const put = await fetch(`${simulator.url}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '300' } });
    expect(put.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe('300');
    const headers = { 'X-aws-ec2-metadata-token': await put.text() };
    expect(await (await fetch(`${simulator.url}//latest/meta-data/instance-id`, { headers })).text()).toBe('i-0list');
    const listing = await (await fetch(`${simulator.url}/latest/meta-data/`, { headers })).text();
    expect(listing.split('\n')).toEqual(expect.arrayContaining(['instance-id', 'placement/']));
    expect(await (await fetch(`${simulator.url}//latest/meta-data`, { headers })).text()).toBe(listing);
    expect(await (await fetch(`${simulator.url}/latest/meta-data/placement/`, { headers })).text()).toBe('availability-zone\nregion');
  });

  test('the control API takes POST only: a GET shows no notice', async () => {
    const response = await fetch(`${simulator.url}/_simulator/trigger`);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    const token = await (await fetch(`${simulator.url}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    expect((await fetch(`${simulator.url}/latest/meta-data/spot/instance-action`, { headers: { 'X-aws-ec2-metadata-token': token } })).status).toBe(404);
  });
});
