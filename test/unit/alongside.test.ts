import { silentLogger } from '../../src/lib/log.js';
import type { SourceName } from '../../src/notice/notice.js';
import { withNodeSource } from '../../src/providers/alongside.js';
import type { Provider, ProviderEvent } from '../../src/providers/types.js';
import { testNotice } from '../helpers/step-context.js';

/** A provider whose watch yields what the test pushes, in order. */
function pushedProvider(name: SourceName) {
  const queue: ProviderEvent[] = [];
  let wake: (() => void) | undefined;
  const provider: Provider = {
    name,
    instanceFacts: () => Promise.resolve({ id: 'i-1', type: null, zone: null, region: null }) as never,
    async *watch({ signal }) {
      while (!signal.aborted) {
        const next = queue.shift();
        if (next) yield next;
        else await new Promise<void>((resolve) => {
          wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    },
  };
  return { provider, push: (event: ProviderEvent) => (queue.push(event), wake?.()) };
}

async function scenario(steps: (cloud: ReturnType<typeof pushedProvider>, node: ReturnType<typeof pushedProvider>) => void, count: number): Promise<ProviderEvent[]> {
  const cloud = pushedProvider('aws');
  const node = pushedProvider('kubernetes');
  const abort = new AbortController();
  const seen: ProviderEvent[] = [];
  const watch = withNodeSource(cloud.provider, node.provider).watch({ signal: abort.signal, log: silentLogger(), onRead: () => undefined });
  steps(cloud, node);
  for await (const event of watch) {
    seen.push(event);
    if (seen.length === count) {
      abort.abort();
      break;
    }
  }
  return seen;
}

const awsTerminate = testNotice({ id: 'aws-terminate-1', provider: 'aws', kind: 'terminate' });
const nodeTerminate = testNotice({ id: 'kubernetes-terminate-1', provider: 'kubernetes', kind: 'terminate' });
const nodeRebalance = testNotice({ id: 'kubernetes-rebalance-1', provider: 'kubernetes', kind: 'rebalance' });

test('the Node showing the terminate the cloud already raised runs no second plan; another kind still goes through', async () => {
  const seen = await scenario((cloud, node) => {
    cloud.push({ type: 'notice', notice: awsTerminate });
    setTimeout(() => {
      node.push({ type: 'notice', notice: nodeTerminate });
      node.push({ type: 'notice', notice: nodeRebalance });
    }, 20);
  }, 2);
  expect(seen.map((event) => (event.type === 'notice' ? event.notice.id : event.noticeId))).toEqual(['aws-terminate-1', 'kubernetes-rebalance-1']);
});

test('a held notice goes on when the one it matched is withdrawn while it still stands, and not when it went first', async () => {
  const seen = await scenario((cloud, node) => {
    cloud.push({ type: 'notice', notice: awsTerminate });
    setTimeout(() => {
      node.push({ type: 'notice', notice: nodeTerminate });
      setTimeout(() => cloud.push({ type: 'withdrawn', noticeId: 'aws-terminate-1', reason: 'cancelled' }), 20);
    }, 20);
  }, 3);
  expect(seen.map((event) => `${event.type} ${event.type === 'notice' ? event.notice.id : event.noticeId}`)).toEqual([
    'notice aws-terminate-1',
    'withdrawn aws-terminate-1',
    'notice kubernetes-terminate-1',
  ]);
  const quiet = await scenario((cloud, node) => {
    cloud.push({ type: 'notice', notice: awsTerminate });
    setTimeout(() => {
      node.push({ type: 'notice', notice: nodeTerminate });
      node.push({ type: 'withdrawn', noticeId: 'kubernetes-terminate-1', reason: 'taint removed' });
      setTimeout(() => cloud.push({ type: 'withdrawn', noticeId: 'aws-terminate-1', reason: 'cancelled' }), 20);
    }, 20);
  }, 2);
  expect(quiet.map((event) => event.type)).toEqual(['notice', 'withdrawn']);
});
