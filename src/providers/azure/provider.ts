import { MetadataError, MetadataRequestError, PreemptdError, errorMessage } from '../../lib/errors.js';
import { METADATA_BACKOFF, backoffDelay, jitteredInterval } from '../../lib/backoff.js';
import { REAL_CLOCK, type Clock } from '../../lib/clock.js';
import { type InstanceFacts, type Notice } from '../../notice/notice.js';
import { MetadataClient, type MetadataResponse } from '../metadata/client.js';
import { pollSource } from '../metadata/poll-loop.js';
import type { Provider, ProviderEvent, ProviderOptions, WatchContext } from '../types.js';
import { SourceReport } from '../metadata/source-report.js';
import {
  ACK_ATTEMPTS,
  AZURE_FIRST_CALL_TIMEOUT_MS,
  AZURE_INSTANCE_PATH,
  FIRST_CALL_MESSAGE,
  METADATA_HEADER,
  parseAzureInstance,
  SCHEDULED_EVENTS_PATH,
  ScheduledEventsTracker,
} from './scheduled-events.js';

/**
 * Detection probe: only Azure IMDS answers the instance document with a `compute.name`
 * (and only with the Metadata header). Resolves to what it saw, or undefined.
 */
export async function probeAzure(client: MetadataClient, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  const response = await client.request({ path: AZURE_INSTANCE_PATH, headers: METADATA_HEADER, timeoutMs, signal });
  if (response.status !== 200) return undefined;
  try {
    parseAzureInstance(response.body);
    return 'GET /metadata/instance answered an instance document with compute.name';
  } catch {
    return undefined;
  }
}

/** A non-200 answer, described with what usually causes it. */
function httpFailure(source: string, response: MetadataResponse): MetadataError {
  const hints: Record<number, string> = {
    400: 'request refused as malformed; a proxy that adds X-Forwarded-For or drops the Metadata header is the usual cause (bypass proxies for 169.254.169.254)',
    429: 'rate limited (Azure allows 5 requests per second per VM, shared by every client on it)',
    410: 'service not ready yet',
    500: 'service error',
  };
  const hint = hints[response.status];
  return new MetadataError('ERR_METADATA_HTTP', `${source}: HTTP ${response.status}${hint ? ` (${hint})` : ''}`, response.status);
}

/**
 * Azure Scheduled Events. Reads the VM's name from the instance document, then polls the
 * events document every poll interval (±jitter), backing off on 429, 410, 500 and network
 * failures. Until the first answer arrives each call may take `azure.firstCallTimeoutMs`.
 * `acknowledge` POSTs StartRequests so Azure may proceed before NotBefore.
 */
export class AzureProvider implements Provider {
  readonly name = 'azure' as const;
  private readonly client: MetadataClient;
  private readonly firstCallTimeoutMs: number;
  private readonly clock: Clock;
  private facts: (InstanceFacts & { name: string }) | undefined;

  constructor(private readonly options: ProviderOptions) {
    this.client = new MetadataClient(options.baseUrl);
    this.firstCallTimeoutMs = options.azure?.firstCallTimeoutMs ?? AZURE_FIRST_CALL_TIMEOUT_MS;
    this.clock = options.clock ?? REAL_CLOCK;
  }

  /** Cached once read; throws MetadataError / MetadataRequestError when it cannot be read. */
  async instanceFacts(signal: AbortSignal): Promise<InstanceFacts & { name: string }> {
    this.facts ??= parseAzureInstance(await this.get('instance', AZURE_INSTANCE_PATH, this.options.requestTimeoutMs, signal));
    return this.facts;
  }

  watch(context: WatchContext): AsyncIterable<ProviderEvent> {
    return this.run(context);
  }

  async acknowledge(notice: Notice, signal: AbortSignal): Promise<void> {
    const eventId = (notice.raw as { EventId?: unknown } | null)?.EventId;
    if (notice.provider !== 'azure' || typeof eventId !== 'string') {
      throw new PreemptdError('ERR_USAGE', `notice ${notice.id} is not an Azure Scheduled Event; only those can be acknowledged`);
    }
    const body = JSON.stringify({ StartRequests: [{ EventId: eventId }] });
    for (let attempt = 1; ; attempt += 1) {
      let failure: PreemptdError;
      try {
        const response = await this.client.request({
          method: 'POST',
          path: SCHEDULED_EVENTS_PATH,
          headers: { ...METADATA_HEADER, 'content-type': 'application/json' },
          body,
          timeoutMs: this.options.requestTimeoutMs,
          signal,
        });
        if (response.status === 200) return;
        failure = httpFailure(`acknowledging event ${eventId}`, response);
        if (response.status === 400) throw failure;
      } catch (error) {
        if (error instanceof MetadataError || signal.aborted) throw error;
        const code = error instanceof MetadataRequestError ? error.code : 'ERR_METADATA_HTTP';
        failure = new PreemptdError(code, `acknowledging event ${eventId}: ${errorMessage(error)}`, { cause: error });
      }
      if (attempt >= ACK_ATTEMPTS) throw failure;
      await this.clock.sleep(backoffDelay(attempt, METADATA_BACKOFF), signal);
    }
  }

  private async *run(context: WatchContext): AsyncGenerator<ProviderEvent> {
    try {
      const facts = await this.waitForFacts(context);
      if (!facts) return;
      yield* this.pollEvents(new ScheduledEventsTracker(facts.name, facts, context.log), context);
    } finally {
      this.client.close();
    }
  }

  /** The VM's name is needed to tell our events from our neighbours': retry until it is known. */
  private async waitForFacts(context: WatchContext): Promise<(InstanceFacts & { name: string }) | undefined> {
    const answers = pollSource(
      {
        report: new SourceReport('instance', context),
        clock: this.clock,
        nextIntervalMs: () => 0,
        read: async (signal) => ({ status: 200, found: [await this.instanceFacts(signal)] }),
      },
      context.signal,
    );
    for await (const facts of answers) return facts;
    return undefined;
  }

  private pollEvents(tracker: ScheduledEventsTracker, context: WatchContext): AsyncGenerator<ProviderEvent> {
    let answered = false;
    context.log.info({ source: 'scheduledevents', timeoutMs: this.firstCallTimeoutMs }, FIRST_CALL_MESSAGE);
    return pollSource(
      {
        report: new SourceReport('scheduledevents', context),
        clock: this.clock,
        nextIntervalMs: () => jitteredInterval(this.options.pollIntervalMs),
        read: async (signal) => {
          const started = performance.now();
          const timeoutMs = answered ? this.options.requestTimeoutMs : this.firstCallTimeoutMs;
          const body = await this.get('scheduledevents', SCHEDULED_EVENTS_PATH, timeoutMs, signal);
          const found = tracker.update(body, new Date());
          if (!answered) context.log.info({ source: 'scheduledevents', ms: Math.round(performance.now() - started) }, 'Azure Scheduled Events answered');
          answered = true;
          return { status: 200, found };
        },
      },
      context.signal,
    );
  }

  /** A GET with the Metadata header; the body on 200, else a MetadataError. */
  private async get(source: string, path: string, timeoutMs: number, signal: AbortSignal): Promise<string> {
    const response = await this.client.request({ path, headers: METADATA_HEADER, timeoutMs, signal });
    if (response.status !== 200) throw httpFailure(source, response);
    return response.body;
  }
}
