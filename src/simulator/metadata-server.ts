import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/log.js';
import type { ProviderName } from '../notice/notice.js';
import { cannotShow, type SimulatedCloud, type SimulatedCloudOptions, type TriggerSpec } from './cloud.js';
import { simulatedCloud } from './clouds.js';
import { FaultLayer } from './faults.js';
import { formatFaultSpec, parseFaultSpec, type FaultSpec } from './fault-spec.js';

export interface SimulatorOptions extends SimulatedCloudOptions {
  provider: ProviderName;
  host?: string;
  port?: number;
  /** Show `trigger` this long after start; never when undefined. */
  noticeAfterMs?: number;
  trigger?: TriggerSpec;
  /** Fault mode (faults.ts); none when undefined. */
  faults?: FaultSpec;
  /** What the fault mode draws its chances from; Math.random when undefined (tests pass a seeded one). */
  random?: () => number;
  log?: Logger;
}

export interface RunningSimulator {
  /** Base URL to give the agent as `metadataUrl`. */
  readonly url: string;
  readonly cloud: SimulatedCloud;
  /** Metadata requests served so far, by path (without query); benchmarks count polls with it. */
  readonly requests: Map<string, number>;
  /** The fault mode: its current spec and what it applied so far. */
  readonly faults: FaultLayer;
  trigger(spec: TriggerSpec): void;
  clear(): void;
  close(): Promise<void>;
}

/** Control paths; real metadata services have nothing under this prefix. */
export const CONTROL_PREFIX = '/_simulator/';

/**
 * Serves a simulated metadata service on loopback. `POST /_simulator/trigger` with a
 * TriggerSpec JSON body shows a notice, `POST /_simulator/clear` removes it, and
 * `POST /_simulator/faults` with a fault spec as its body (empty: none) sets the fault mode.
 */
export async function startSimulator(options: SimulatorOptions): Promise<RunningSimulator> {
  const entry = simulatedCloud(options.provider);
  // A kind this cloud cannot show is refused now, not when the timer fires.
  const checkKind = (spec: TriggerSpec) => {
    if (entry.kinds[spec.kind] === undefined) throw cannotShow(options.provider, String(spec.kind));
  };
  if (options.trigger) checkKind(options.trigger);
  const cloud = entry.create(options);
  const requests = new Map<string, number>();
  const faults = new FaultLayer(options.provider, options.faults, options.random);
  const showNotice = (spec: TriggerSpec) => {
    checkKind(spec);
    const shown = faults.adjustTrigger(spec);
    cloud.trigger(shown);
    options.log?.info({ trigger: shown }, 'simulator: notice shown');
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (request.url?.startsWith(CONTROL_PREFIX)) handleControl(request.method ?? 'GET', request.url.slice(CONTROL_PREFIX.length), body, response);
      else {
        const path = (request.url ?? '/').split('?')[0]!;
        requests.set(path, (requests.get(path) ?? 0) + 1);
        faults.serve(request, response, () => cloud.handle(request, response, body));
      }
    });
  });

  function handleControl(method: string, command: string, body: string, response: http.ServerResponse): void {
    if (method !== 'POST') {
      response.writeHead(405, { Allow: 'POST' }).end(`simulator commands take POST, not ${method}\n`);
      return;
    }
    try {
      if (command === 'trigger') {
        showNotice(JSON.parse(body || '{}') as TriggerSpec);
      } else if (command === 'faults') {
        faults.set(parseFaultSpec(body));
        options.log?.info({ faults: formatFaultSpec(faults.current) }, 'simulator: fault mode set');
      } else if (command === 'clear') {
        cloud.clear();
        options.log?.info('simulator: notices cleared');
      } else {
        response.writeHead(404).end(`unknown simulator command ${command}; expected trigger, clear or faults\n`);
        return;
      }
      response.writeHead(204).end();
    } catch (error) {
      response.writeHead(400).end(`bad simulator request: ${(error as Error).message}\n`);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let noticeTimer: NodeJS.Timeout | undefined;
  if (options.noticeAfterMs !== undefined && options.trigger) {
    const spec = options.trigger;
    noticeTimer = setTimeout(() => showNotice(spec), options.noticeAfterMs);
  }
  return {
    url: `http://${host}:${address.port}`,
    cloud,
    requests,
    faults,
    trigger: (spec) => {
      checkKind(spec);
      cloud.trigger(faults.adjustTrigger(spec));
    },
    clear: () => cloud.clear(),
    close: async () => {
      clearTimeout(noticeTimer);
      cloud.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
