import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compileConfig } from '../src/config/schema.js';
import { createDaemon } from '../src/daemon/daemon.js';
import { createLogger, silentLogger } from '../src/lib/log.js';
import type { Notice } from '../src/notice/notice.js';
import { noticeView } from '../src/notice/notice-view.js';
import { serveDaemon } from '../src/observe/local-server.js';
import { NoticeBoard } from '../src/observe/notice-board.js';
import { NoticeFile } from '../src/observe/notice-file.js';
import { STEP_TYPES } from '../src/steps/registry.js';
import { ScriptedProvider } from '../test/helpers/scripted-provider.js';
import { flag } from './lib/args.js';
import { summarise } from './lib/stats.js';

/**
 * Notice delivery to applications: from the notice raised (the daemon's `notice` event, once
 * the journal holds it) to the notice file written and a waiting GET /v1/notice?wait=30s
 * answered, with the agent in-process (board, file writer, local server). The time from the
 * provider's event to the notice raised (the journal's fsync) is printed beside it. Each notice's
 * plan holds on an http step until the trial ends, then finishes and the file goes.
 * Baseline: the same two deliveries by hand (a temp file renamed in, a held response
 * answered), measured in the same run. Goal: p99 <= 20 ms for both.
 *
 * npm run bench -- notice-delivery [--trials 100]
 */
export default async function main(args: string[]): Promise<void> {
  const trials = Number(flag(args, '--trials') ?? 100);
  const dir = mkdtempSync(join(tmpdir(), 'preemptd-notice-delivery-'));
  try {
    const agent = await measureAgent(dir, trials);
    const baseline = await measureBaseline(dir, trials);
    const line = (name: string, values: number[], goal: string) => {
      const s = summarise(values);
      return `${name.padEnd(22)} p50=${s.p50.toFixed(2)}ms p90=${s.p90.toFixed(2)}ms p99=${s.p99.toFixed(2)}ms max=${s.max.toFixed(2)}ms${goal}`;
    };
    console.log(`trials=${trials}`);
    console.log(line('agent: file written', agent.file, '  goal: p99 <= 20 ms'));
    console.log(line('agent: long-poll', agent.poll, '  goal: p99 <= 20 ms'));
    console.log(line('agent: to raised', agent.raised!, '  (before the above: journal written with fsync)'));
    console.log(line('by hand: file', baseline.file, '  (baseline)'));
    console.log(line('by hand: long-poll', baseline.poll, '  (baseline)'));
    const ratio = (a: number[], b: number[]) => (summarise(a).p50 / summarise(b).p50).toFixed(2);
    console.log(`ratio agent/by-hand p50: file ${ratio(agent.file, baseline.file)}, long-poll ${ratio(agent.poll, baseline.poll)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Figures {
  file: number[];
  poll: number[];
  /** The agent only: from the provider's event to the daemon's `notice` event (the journal written first). */
  raised?: number[];
}

async function measureAgent(dir: string, trials: number): Promise<Figures> {
  const gate = await startGate();
  const path = join(dir, 'agent.json');
  const config = compileConfig(
    { provider: 'aws', stateDir: join(dir, 'state'), noticeFile: path, server: { listen: '127.0.0.1:0' }, steps: [{ name: 'hold', http: { url: gate.url, method: 'POST' } }] },
    { stepTypes: STEP_TYPES },
  );
  const provider = new ScriptedProvider();
  const log = process.env.BENCH_DEBUG ? createLogger({ level: 'debug', destination: process.stderr }) : silentLogger();
  const daemon = createDaemon({ config, log, provider });
  const board = new NoticeBoard(daemon);
  const file = new NoticeFile(board, path, log);
  const server = (await serveDaemon(daemon, config, log, { notices: board }))!;
  const running = daemon.run();
  const figures: Figures = { file: [], poll: [], raised: [] };
  try {
    await file.settled();
    for (let trial = 0; trial < trials; trial++) {
      const { answered } = await longPoll(`${server.url}/v1/notice?wait=30s`);
      const written = fileAppears(path);
      const ended = new Promise((resolve) => daemon.once('planFinished', resolve));
      const raised = new Promise<number>((resolve) => daemon.once('notice', () => resolve(performance.now())));
      const started = performance.now();
      provider.emit({ type: 'notice', notice: benchNotice() });
      const [fileAt, pollAt, raisedAt] = await Promise.all([written, answered, raised]);
      figures.file.push(fileAt - raisedAt);
      figures.poll.push(pollAt - raisedAt);
      figures.raised!.push(raisedAt - started);
      gate.release();
      await ended;
      await until(() => !existsSync(path));
    }
  } finally {
    await daemon.stop();
    gate.release();
    await running;
    await server.close();
    await file.close();
    board.close();
    await gate.close();
  }
  return figures;
}

async function measureBaseline(dir: string, trials: number): Promise<Figures> {
  const path = join(dir, 'by-hand', 'notice.json');
  mkdirSync(join(dir, 'by-hand'));
  let held: ServerResponse | undefined;
  const server = createServer((_request, response) => (held = response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const figures: Figures = { file: [], poll: [] };
  for (let trial = 0; trial < trials; trial++) {
    const { answered } = await longPoll(url);
    await until(() => held !== undefined);
    const written = fileAppears(path);
    const started = performance.now();
    const body = JSON.stringify(noticeView(benchNotice(), Date.now()));
    held!.writeHead(200, { 'content-type': 'application/json' }).end(body);
    held = undefined;
    const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temporary, body, { mode: 0o644 });
    await rename(temporary, path);
    const [fileAt, pollAt] = await Promise.all([written, answered]);
    figures.file.push(fileAt - started);
    figures.poll.push(pollAt - started);
    rmSync(path);
  }
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return figures;
}

/** Sends a GET and resolves once it is on the wire; `answered` gives when its answer came. */
async function longPoll(url: string): Promise<{ answered: Promise<number> }> {
  let sent!: () => void;
  const onWire = new Promise<void>((resolve) => (sent = resolve));
  const t0 = performance.now();
  const answered = new Promise<number>((resolve, reject) => {
    const request = get(url, (response: IncomingMessage) => {
      response.resume();
      response.on('end', () => resolve(performance.now()));
      if (response.statusCode !== 200) reject(new Error(`long-poll answered ${response.statusCode} after ${(performance.now() - t0).toFixed(1)} ms`));
    });
    request.on('error', reject);
    request.on('finish', () => sent());
  });
  await onWire;
  // The server has read the request and holds it before the notice comes.
  await new Promise((resolve) => setTimeout(resolve, 5));
  return { answered };
}

/** When `path` appears: a watch on its directory, checked once in case it is there already. */
function fileAppears(path: string): Promise<number> {
  const directory = join(path, '..');
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    const check = () => {
      if (!existsSync(path)) return;
      const at = performance.now();
      watcher?.close();
      resolve(at);
    };
    watcher = watch(directory, check);
    check();
  });
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
}

function benchNotice(): Notice {
  const now = Date.now();
  return { id: `aws-terminate-${randomBytes(8).toString('hex')}`, provider: 'aws', kind: 'terminate', deadline: new Date(now + 120_000), detectedAt: new Date(now), instance: {}, raw: {} };
}


/** A drain endpoint that holds requests until released: the plan stays running meanwhile. */
async function startGate(): Promise<{ url: string; release(): void; close(): Promise<void> }> {
  const held: ServerResponse[] = [];
  const server: Server = createServer((request, response) => {
    request.resume();
    held.push(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/drain`,
    release: () => held.splice(0).forEach((response) => response.writeHead(204).end()),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
