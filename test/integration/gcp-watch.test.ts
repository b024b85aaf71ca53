import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TestResources } from '../helpers/resources.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';
import { GcpProvider } from '../../src/providers/gcp/provider.js';
import { parseFaultSpec } from '../../src/simulator/fault-spec.js';

/** Issue 13: GCP acts on `preempted` without waiting on facts, and never spins. */
const resources = new TestResources('preemptd-gcp-watch-');

/**
 * A GCE metadata server on loopback that shows `preempted` TRUE. `instance/id` answers as
 * told: `ok`, `fail` with 500, or `hang`: no fact ever answers. Other facts are 404;
 * hanging GETs never answer.
 */
async function preemptedServer(instanceId: 'ok' | 'fail' | 'hang'): Promise<string> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    const send = (status: number, body: string) => response.writeHead(status, { 'Metadata-Flavor': 'Google', ETag: 'e1' }).end(body);
    if (request.url?.includes('wait_for_change=true')) return;
    if (path === '/computeMetadata/v1/instance/preempted') return send(200, 'TRUE');
    if (path === '/computeMetadata/v1/instance/maintenance-event') return send(200, 'NONE');
    if (instanceId === 'hang') return;
    if (path === '/computeMetadata/v1/instance/id') return instanceId === 'ok' ? send(200, '42') : send(500, 'error');
    send(404, 'Not Found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  resources.defer(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const gcp = (url: string, requestTimeoutMs = 1000) => new GcpProvider(testProviderOptions(url, { requestTimeoutMs, bootId: 'boot-a' }));

test('preempted is acted on without waiting for instance facts that never come', async () => {
  // Facts that never answer within the request timeout (longer than this test may take).
  const url = await preemptedServer('hang');
  const [event] = await collectEvents(gcp(url, 60_000), watchRecorder(), 1, 8_000);
  expect(noticeOf(event)).toMatchObject({ kind: 'preempt', instance: {} });
}, 10_000);

test('the preempt notice id is the same whether the instance id loads or not', async () => {
  const failing = noticeOf((await collectEvents(gcp(await preemptedServer('fail')), watchRecorder(), 1))[0]);
  const loading = noticeOf((await collectEvents(gcp(await preemptedServer('ok')), watchRecorder(), 1))[0]);
  expect(failing.instance.id).toBeUndefined();
  expect(loading.instance.id).toBe('42');
  expect(failing.id).toBe(loading.id);
});

test('hanging GETs answered at once with nothing new are not repeated in a tight loop', async () => {
  const simulator = await resources.simulator({ provider: 'gcp', faults: parseFaultSpec('early-return') });
  const recorder = watchRecorder();
  const provider = new GcpProvider(testProviderOptions(simulator.url, { pollIntervalMs: 200, gcp: { hangTimeoutSeconds: 5 }, bootId: 'boot-a' }));
  const watching = collectEvents(provider, recorder, 1, 60_000).catch(() => []);
  resources.defer(async () => {
    recorder.abort();
    await watching;
  });
  await recorder.readMatching((read) => read.source === 'instance/maintenance-event');
  const before = simulator.requests.get('/computeMetadata/v1/instance/maintenance-event') ?? 0;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const served = (simulator.requests.get('/computeMetadata/v1/instance/maintenance-event') ?? 0) - before;
  // At one read per 200 ms poll interval: about 8. A spinning loop makes thousands.
  expect(served).toBeLessThan(30);
  expect(simulator.faults.applied.get('early-return')).toBeGreaterThan(0);
  expect(recorder.logs.some((line) => String(line.msg).includes('returned at once with nothing new'))).toBe(true);
});
