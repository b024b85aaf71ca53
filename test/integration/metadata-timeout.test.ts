import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PreemptdError } from '../../src/lib/errors.js';
import { AwsProvider } from '../../src/providers/aws/provider.js';
import { GcpProvider } from '../../src/providers/gcp/provider.js';
import { MetadataClient } from '../../src/providers/metadata/client.js';
import type { Provider } from '../../src/providers/types.js';
import { testProviderOptions, watchRecorder, type WatchRecorder } from '../helpers/provider-watch.js';

/** Short, so each read gives up quickly; nothing here ever answers anyway. */
const TIMEOUT_MS = 100;

/** A loopback metadata service that takes every request and never answers it. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(() => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs a provider's watch in the background; `stop` ends it and waits until it has. */
function watchInBackground(provider: Provider, recorder: WatchRecorder): { stop(): Promise<void> } {
  const watching = (async () => {
    for await (const event of provider.watch(recorder.context)) throw new Error(`no event expected, got ${JSON.stringify(event)}`);
  })();
  return {
    stop: async () => {
      recorder.abort();
      await watching;
    },
  };
}

describe('a metadata service that never answers', () => {
  let server: Awaited<ReturnType<typeof silentServer>>;
  beforeEach(async () => (server = await silentServer()));
  afterEach(() => server.close());

  test('a request that times out rejects with ERR_METADATA_TIMEOUT', async () => {
    const client = new MetadataClient(server.url);
    try {
      const request = client.request({ path: '/computeMetadata/v1/instance/id', timeoutMs: TIMEOUT_MS });
      await expect(request).rejects.toBeInstanceOf(PreemptdError);
      await expect(request).rejects.toMatchObject({ code: 'ERR_METADATA_TIMEOUT', kind: 'timeout', message: `no complete answer within ${TIMEOUT_MS} ms` });
    } finally {
      client.close();
    }
  });

  test('a polled read that times out is reported and logged with ERR_METADATA_TIMEOUT', async () => {
    const recorder = watchRecorder();
    const watch = watchInBackground(new GcpProvider(testProviderOptions(server.url, { requestTimeoutMs: TIMEOUT_MS })), recorder);
    const read = await recorder.readMatching((candidate) => candidate.source === 'instance/preempted' && !candidate.ok);
    await watch.stop();
    expect(read).toMatchObject({ ok: false, code: 'ERR_METADATA_TIMEOUT', error: `no complete answer within ${TIMEOUT_MS} ms` });
    expect(recorder.logs.find((line) => line.source === 'instance/preempted')).toMatchObject({ level: 'warn', err: { type: 'MetadataRequestError', code: 'ERR_METADATA_TIMEOUT' } });
  });

  test('an IMDSv2 token PUT that times out keeps ERR_TOKEN_TIMEOUT, and so does the read that needed it', async () => {
    const recorder = watchRecorder();
    const options = testProviderOptions(server.url, { aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: TIMEOUT_MS } });
    const watch = watchInBackground(new AwsProvider(options), recorder);
    const token = await recorder.readMatching((candidate) => candidate.source === 'token' && !candidate.ok);
    const polled = await recorder.readMatching((candidate) => candidate.source === 'spot/instance-action' && !candidate.ok);
    await watch.stop();
    expect(token).toMatchObject({ ok: false, code: 'ERR_TOKEN_TIMEOUT' });
    expect(polled).toMatchObject({ ok: false, code: 'ERR_TOKEN_TIMEOUT' });
  });
});
