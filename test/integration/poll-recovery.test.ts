import { AlibabaProvider } from '../../src/providers/alibaba/provider.js';
import { AwsProvider } from '../../src/providers/aws/provider.js';
import type { Provider } from '../../src/providers/types.js';
import { NO_FAULTS, parseFaultSpec } from '../../src/simulator/fault-spec.js';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { collectEvents, noticeOf, testProviderOptions, watchRecorder } from '../helpers/provider-watch.js';

/** How long a token PUT that gets no answer is waited for (real time: the request's own limit). */
const TOKEN_TIMEOUT_MS = 300;

/** On a fake clock, so an outage reaches the backoff cap (5 s) in a few tries that take no real time. */
const CLOUDS = {
  aws: {
    polled: 'spot/instance-action',
    provider: (url: string): Provider =>
      new AwsProvider(testProviderOptions(url, { aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: TOKEN_TIMEOUT_MS }, clock: new FakeClock() })),
  },
  alibaba: {
    polled: 'instance/spot/termination-time',
    provider: (url: string): Provider => new AlibabaProvider(testProviderOptions(url, { requestTimeoutMs: TOKEN_TIMEOUT_MS, clock: new FakeClock() })),
  },
} as const;

describe.each(Object.keys(CLOUDS) as Array<keyof typeof CLOUDS>)('%s after a metadata outage', (cloud) => {
  let simulator: RunningSimulator | undefined;
  afterEach(async () => {
    await simulator?.close();
    simulator = undefined;
  });

  test('a read during the outage waits for a token request, never for a token backoff; once the service is back the notice waits one backoff step at most', async () => {
    // The token PUT is never answered (the hop-limit symptom); other requests are served.
    simulator = await startSimulator({ provider: cloud, faults: parseFaultSpec('hang-token:1') });
    const { polled, provider } = CLOUDS[cloud];
    const recorder = watchRecorder();
    const events = collectEvents(provider(simulator.url), recorder, 1);
    let tokenFailures = 0;
    // Four failed token requests in a row: every backoff has reached its cap.
    await recorder.readMatching((read) => read.source === 'token' && !read.ok && ++tokenFailures === 4);
    simulator.faults.set(NO_FAULTS);
    simulator.trigger({ kind: 'terminate' });
    const back = recorder.reads.length;
    const [event] = await events;
    expect(noticeOf(event)).toMatchObject({ provider: cloud, kind: 'terminate' });

    // A read turned away at once by a token backoff still running (rather than waiting for a
    // token request, which takes the token timeout) is what made backoffs stack: the source
    // then backed off again on top.
    const outage = recorder.reads.slice(0, back).filter((read) => read.source === polled);
    expect(outage.length).toBeGreaterThan(0);
    expect(outage.filter((read) => read.ms < TOKEN_TIMEOUT_MS / 2)).toEqual([]);
    // A token request still hanging when the service came back fails one more read; the
    // next one, one backoff step later, finds the notice.
    const afterReturn = recorder.reads.slice(back).filter((read) => read.source === polled);
    expect(afterReturn.filter((read) => !read.ok).length).toBeLessThanOrEqual(1);
    expect(afterReturn.some((read) => read.ok)).toBe(true);
  });
});
