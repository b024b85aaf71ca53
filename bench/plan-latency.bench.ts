import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import got from 'got';
import { compileConfig } from '../src/config/schema.js';
import { STEP_TYPES } from '../src/steps/registry.js';
import { flag } from './lib/args.js';
import { runPlanForNotice } from './lib/run-plan.js';
import { summarise } from './lib/stats.js';

/**
 * Plan latency: a plan of one webhook, one http drain (POST /drain, then GET /status until
 * in_flight is 0) and one signal step (a `sleep` matched by its argv[0], confirmed exited),
 * all against local services. Measures notice-in-hand to all three finished, minus the time
 * the services spend answering (measured inside them). Baseline: the same three jobs done
 * by hand in one Promise.all (got calls, process.kill, polling). Goal: overhead <= 50 ms.
 *
 * npm run bench -- plan-latency [--rounds 30] [--service-ms 0]
 */
export default async function main(args: string[]): Promise<void> {
  const rounds = Number(flag(args, '--rounds') ?? 30);
  const serviceDelayMs = Number(flag(args, '--service-ms') ?? 0);
  const services = await startServices(serviceDelayMs);
  try {
    const agent: number[] = [];
    const baseline: number[] = [];
    for (let round = 0; round < rounds; round++) {
      agent.push(await timeAgent(services, `preemptd-plan-${process.pid}-${round}-a`));
      baseline.push(await timeBaseline(services, `preemptd-plan-${process.pid}-${round}-b`));
    }
    const a = summarise(agent);
    const b = summarise(baseline);
    console.log(`rounds=${rounds} service delay=${serviceDelayMs}ms (subtracted)`);
    console.log(`plan overhead  p50=${a.p50.toFixed(1)}ms p90=${a.p90.toFixed(1)}ms max=${a.max.toFixed(1)}ms  goal: <= 50 ms`);
    console.log(`by hand        p50=${b.p50.toFixed(1)}ms p90=${b.p90.toFixed(1)}ms max=${b.max.toFixed(1)}ms  (baseline)`);
    console.log(`ratio plan/by-hand p50=${(a.p50 / b.p50).toFixed(2)}`);
  } finally {
    await services.close();
  }
}

interface Services {
  webhookUrl: string;
  drainUrl: string;
  statusUrl: string;
  /** Time the services spent answering since the last reset, per branch (webhook, drain). */
  busy: { webhook: number; drain: number };
  reset(): void;
  close(): Promise<void>;
}

async function startServices(delayMs: number): Promise<Services> {
  const busy = { webhook: 0, drain: 0 };
  const server: Server = createServer((request, response) => {
    const started = performance.now();
    request.resume();
    request.on('end', () => {
      setTimeout(() => {
        const branch = request.url === '/hook' ? 'webhook' : 'drain';
        if (request.url === '/status') {
          response.setHeader('content-type', 'application/json');
          response.end(JSON.stringify({ in_flight: 0 }));
        } else {
          response.writeHead(request.url === '/hook' ? 204 : 202).end();
        }
        busy[branch] += performance.now() - started;
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    webhookUrl: `${base}/hook`,
    drainUrl: `${base}/drain`,
    statusUrl: `${base}/status`,
    busy,
    reset: () => Object.assign(busy, { webhook: 0, drain: 0 }),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function startWorkload(marker: string): Promise<void> {
  const child = spawn('sleep', ['3600'], { argv0: marker, stdio: 'ignore' });
  await once(child, 'spawn');
}

function serviceTime(services: Services): number {
  return Math.max(services.busy.webhook, services.busy.drain);
}

async function timeAgent(services: Services, marker: string): Promise<number> {
  await startWorkload(marker);
  const config = compileConfig({
    provider: 'aws',
    steps: [
      { name: 'tell-ops', webhook: { url: services.webhookUrl, format: 'json' } },
      { name: 'drain', http: { url: services.drainUrl, until: { url: services.statusUrl, interval: '20ms', json: { path: 'in_flight', equals: 0 } } } },
      { name: 'stop', signal: { match: marker, waitExit: '5s' } },
    ],
  }, { stepTypes: STEP_TYPES });
  services.reset();
  const started = performance.now();
  const result = await runPlanForNotice(config, marker);
  const elapsed = performance.now() - started;
  const failed = result.steps.filter((step) => step.status !== 'ok');
  if (failed.length > 0 || result.steps.length !== 3) {
    throw new Error(`plan did not finish cleanly: ${JSON.stringify(result.steps.map(({ name, status, error }) => ({ name, status, error })))}`);
  }
  return elapsed - serviceTime(services);
}

/** The same three jobs written by hand, with no config, plan, deadlines or reporting. */
async function timeBaseline(services: Services, marker: string): Promise<number> {
  const child = spawn('sleep', ['3600'], { argv0: marker, stdio: 'ignore' });
  await once(child, 'spawn');
  services.reset();
  const started = performance.now();
  const options = { retry: { limit: 0 }, throwHttpErrors: false } as const;
  await Promise.all([
    got.post(services.webhookUrl, { ...options, json: { type: 'notice' } }),
    got.post(services.drainUrl, options).then(() => got.get(services.statusUrl, { ...options, responseType: 'json' })),
    (async () => {
      process.kill(child.pid!, 'SIGTERM');
      while (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => setTimeout(resolve, 2));
    })(),
  ]);
  return performance.now() - started - serviceTime(services);
}
