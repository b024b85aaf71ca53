import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PreemptdError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProviderName } from '../notice.js';
import type { SimulatedCloud, TriggerSpec } from './cloud.js';
import { SIMULATED_CLOUDS, type SimulatedCloudOptions } from './clouds.js';

export interface SimulatorOptions extends SimulatedCloudOptions {
  provider: ProviderName;
  host?: string;
  port?: number;
  /** Show `trigger` this long after start; never when undefined. */
  noticeAfterMs?: number;
  trigger?: TriggerSpec;
  log?: Logger;
}

export interface RunningSimulator {
  /** Base URL to give the agent as `metadataUrl`. */
  readonly url: string;
  readonly cloud: SimulatedCloud;
  /** Metadata requests served so far, by path (without query); benchmarks count polls with it. */
  readonly requests: Map<string, number>;
  trigger(spec: TriggerSpec): void;
  clear(): void;
  close(): Promise<void>;
}

/** Control paths; real metadata services have nothing under this prefix. */
export const CONTROL_PREFIX = '/_simulator/';

/**
 * Serves a simulated metadata service on loopback. `POST /_simulator/trigger` with a
 * TriggerSpec JSON body shows a notice, `POST /_simulator/clear` removes it.
 */
export async function startSimulator(options: SimulatorOptions): Promise<RunningSimulator> {
  const createCloud = SIMULATED_CLOUDS[options.provider];
  if (!createCloud) {
    throw new PreemptdError('ERR_USAGE', `the simulator has no ${options.provider} cloud; expected one of ${Object.keys(SIMULATED_CLOUDS).join(', ')}`);
  }
  const cloud = createCloud(options);
  const requests = new Map<string, number>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (request.url?.startsWith(CONTROL_PREFIX)) handleControl(request.url.slice(CONTROL_PREFIX.length), body, response);
      else {
        const path = (request.url ?? '/').split('?')[0]!;
        requests.set(path, (requests.get(path) ?? 0) + 1);
        cloud.handle(request, response, body);
      }
    });
  });

  function handleControl(command: string, body: string, response: http.ServerResponse): void {
    try {
      if (command === 'trigger') {
        const spec = JSON.parse(body || '{}') as TriggerSpec;
        cloud.trigger(spec);
        options.log?.info({ trigger: spec }, 'simulator: notice shown');
      } else if (command === 'clear') {
        cloud.clear();
        options.log?.info('simulator: notices cleared');
      } else {
        response.writeHead(404).end(`unknown simulator command ${command}; expected trigger or clear\n`);
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
    noticeTimer = setTimeout(() => {
      cloud.trigger(spec);
      options.log?.info({ trigger: spec }, 'simulator: notice shown');
    }, options.noticeAfterMs);
  }
  return {
    url: `http://${host}:${address.port}`,
    cloud,
    requests,
    trigger: (spec) => cloud.trigger(spec),
    clear: () => cloud.clear(),
    close: async () => {
      clearTimeout(noticeTimer);
      cloud.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
