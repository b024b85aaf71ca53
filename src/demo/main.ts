import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { simulatedCloud } from '../simulator/clouds.js';
import { EXIT_USAGE, errorMessage } from '../lib/errors.js';
import { startSimulator } from '../simulator/metadata-server.js';
import { demoConfig } from './config.js';
import { DEMO_USAGE, parseDemoArgs, type DemoOptions } from './options.js';

/**
 * `npm run demo`: the simulator, a sample workload, a local webhook receiver and the agent
 * with an example config, wired together on loopback. A person sees the notice arrive,
 * the webhook land and the workload get its signals within about 15 seconds.
 */
let options: DemoOptions;
try {
  options = parseDemoArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`demo: ${errorMessage(error)}\n\n${DEMO_USAGE}`);
  process.exit(EXIT_USAGE);
}
if (options.help) {
  process.stdout.write(DEMO_USAGE);
  process.exit(0);
}
const { provider, noticeAfterSeconds } = options;
const kind = simulatedCloud(provider).defaultKind;
const here = dirname(fileURLToPath(import.meta.url));
const workDir = mkdtempSync(join(tmpdir(), 'preemptd-demo-'));
const colour = (code: number, text: string) => (process.stdout.isTTY ? `\u001b[${code}m${text}\u001b[0m` : text);
const say = (who: string, code: number, text: string) => process.stdout.write(`${colour(code, who.padEnd(10))} ${text}\n`);

const seen = { webhook: false, checkpoint: false, terminated: false, planFinished: false };

const receiver = http.createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    const event = JSON.parse(body) as { type: string; notice: { kind: string; deadline: string | null }; steps: { name: string; status: string; ms: number }[] };
    seen.webhook = true;
    const steps = event.steps.map((step) => `${step.name}=${step.status}(${step.ms}ms)`).join(' ');
    say('webhook', 35, `received "${event.type}" for a ${event.notice.kind} notice, deadline ${event.notice.deadline}${steps ? `: ${steps}` : ''}`);
    response.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/ops`;

const simulator = await startSimulator({
  provider,
  noticeAfterMs: noticeAfterSeconds * 1000,
  trigger: { kind: kind, leadMs: 120_000 },
});
say('simulator', 33, `${provider} metadata service at ${simulator.url}; a ${kind} notice appears in ${noticeAfterSeconds}s`);

const pidfile = join(workDir, 'trainer.pid');
const workload = spawn(process.execPath, [join(here, 'workload.js'), pidfile, 'trainer'], { stdio: ['ignore', 'pipe', 'inherit'] });
createInterface({ input: workload.stdout }).on('line', (line) => {
  const message = (JSON.parse(line) as { msg: string }).msg;
  if (message.startsWith('SIGUSR1')) seen.checkpoint = true;
  if (message.startsWith('SIGTERM')) seen.terminated = true;
  say('workload', 32, message);
});

const configFile = join(workDir, 'config.yaml');
writeFileSync(configFile, demoConfig({ provider, metadataUrl: simulator.url, stateDir: join(workDir, 'state'), noticeFile: join(workDir, 'notice.json'), receiverUrl, pidfile }));
say('demo', 36, `config written to ${configFile}`);

const agent = spawn(process.execPath, [join(here, '..', 'cli.js'), 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] });
createInterface({ input: agent.stdout }).on('line', (line) => {
  let entry: { level?: string; msg?: string; step?: string; status?: string; ms?: number; error?: string };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    return say('agent', 34, line);
  }
  if (entry.msg?.startsWith('plan finished')) seen.planFinished = true;
  const stepFacts = entry.step ? `: ${entry.step} ${entry.status ?? ''}${entry.ms === undefined ? '' : ` in ${entry.ms}ms`}${entry.error ? ` (${entry.error})` : ''}` : '';
  if (entry.level !== 'debug' && entry.level !== 'trace') say('agent', 34, `${entry.level} ${entry.msg}${stepFacts}`);
});

const started = Date.now();
while (!(seen.planFinished && seen.webhook && seen.terminated) && Date.now() - started < 30_000 && agent.exitCode === null) {
  await new Promise((resolve) => setTimeout(resolve, 200));
}
// Give the finish webhook a moment to land before stopping.
await new Promise((resolve) => setTimeout(resolve, 500));
agent.kill('SIGTERM');
await new Promise((resolve) => agent.once('exit', resolve));
workload.kill('SIGKILL');
await simulator.close();
receiver.close();
rmSync(workDir, { recursive: true, force: true });

const ok = seen.webhook && seen.checkpoint && seen.terminated && seen.planFinished;
say('demo', 36, ok
  ? `done in ${((Date.now() - started) / 1000).toFixed(1)}s: notice detected, webhook delivered, workload checkpointed and stopped`
  : `incomplete: ${JSON.stringify(seen)}`);
process.exit(ok ? 0 : 1);
