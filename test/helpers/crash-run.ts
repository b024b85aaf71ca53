import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';
import { startReceiver, type Receiver } from './receiver.js';

/**
 * One kill -9 trial against the real CLI (`node <cli> run`): a terminate notice 60 s ahead,
 * a plan of five steps taking about a second, the agent killed with SIGKILL `killAfterMs`
 * after it logs the notice, then started again and left to finish. Shared by
 * test/crash.test.ts (a few trials) and bench/crash-series (20).
 */

/** Exec steps append `start` and `end` to runs/<step> so every run is counted, even a cut one. */
const EXEC_STEPS = ['checkpoint', 'upload', 'stop-trainer'];
const STEP_MS = 300;

export interface CrashTrial {
  killAfterMs: number;
  /** Step name → runs begun before the kill. */
  runsAtKill: Record<string, number>;
  /** Step name → runs begun in all (both agents). */
  runsTotal: Record<string, number>;
  /** Steps the journal on disk had recorded as finished at the moment of the kill. */
  journaledAtKill: string[];
  /** Whether the journal file existed at the kill. */
  journalAtKill: 'missing' | 'valid' | 'corrupt';
  /** Steps of the restarted agent's final journal entry, with their status. */
  finalSteps: Record<string, string>;
  finalStatus: string | undefined;
  /** Whether the restarted agent should run the unfinished steps (deadline ahead, or plan never journaled). */
  runsAgain: boolean;
  /** Everything wrong with the trial; empty when crash safety held. */
  problems: string[];
}

export interface CrashTrialOptions {
  /** Path of the built CLI (dist/src/cli.js). */
  cli: string;
  workDir: string;
  killAfterMs: number;
  /** Written to stateDir/journal.json before the first start (torn-write trials). */
  journalText?: string;
  /** How far ahead the notice time lies (default 60 s). */
  leadMs?: number;
  /** Pause between the kill and the restart (default none). */
  restartAfterMs?: number;
}

interface JournalFile {
  version: number;
  notices: Array<{ notice: { id: string }; status: string; steps: Record<string, { status: string }> }>;
}

function readJournal(stateDir: string): { state: 'missing' | 'valid' | 'corrupt'; journal?: JournalFile } {
  const path = join(stateDir, 'journal.json');
  if (!existsSync(path)) return { state: 'missing' };
  try {
    const journal = JSON.parse(readFileSync(path, 'utf8')) as JournalFile;
    return journal.version === 1 && Array.isArray(journal.notices) ? { state: 'valid', journal } : { state: 'corrupt' };
  } catch {
    return { state: 'corrupt' };
  }
}

function countRuns(runsDir: string, receiver: Receiver): Record<string, number> {
  const runs: Record<string, number> = {};
  for (const step of EXEC_STEPS) {
    const file = join(runsDir, step);
    runs[step] = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((line) => line === 'start').length : 0;
  }
  for (const path of ['/notify', '/summary']) runs[path.slice(1)] = receiver.requests.filter((request) => request.path === path).length;
  return runs;
}

function writeConfig(options: CrashTrialOptions, simulator: RunningSimulator, receiver: Receiver): string {
  const runsDir = join(options.workDir, 'runs');
  mkdirSync(runsDir, { recursive: true });
  const exec = (name: string, after: string[]) =>
    `  - name: ${name}\n    after: [${after.join(', ')}]\n    exec: { command: ["sh", "-c", "echo start >> \\"$0\\"; sleep ${STEP_MS / 1000}; echo end >> \\"$0\\"", "${join(runsDir, name)}"] }`;
  const file = join(options.workDir, 'config.yaml');
  writeFileSync(
    file,
    [
      'provider: aws',
      `metadataUrl: ${simulator.url}`,
      'pollInterval: 100ms',
      `stateDir: ${join(options.workDir, 'state')}`,
      'server: { enabled: false }',
      'steps:',
      `  - { name: notify, webhook: { url: "${receiver.url('/notify')}" } }`,
      exec('checkpoint', []),
      exec('upload', ['checkpoint']),
      exec('stop-trainer', ['upload', 'notify']),
      `  - { name: summary, webhook: { url: "${receiver.url('/summary')}", send: finish } }`,
    ].join('\n'),
  );
  return file;
}

function startAgent(cli: string, config: string): { child: ChildProcess; lines: string[]; waitForLine(pattern: RegExp, timeoutMs: number): Promise<void> } {
  const child = spawn(process.execPath, [cli, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      waiters.splice(0).forEach((wake) => wake());
    });
  }
  return {
    child,
    lines,
    waitForLine: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
        const check = () => {
          if (lines.some((line) => pattern.test(line))) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      }),
  };
}

async function stopAgent(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

export async function crashTrial(options: CrashTrialOptions): Promise<CrashTrial> {
  const stateDir = join(options.workDir, 'state');
  const runsDir = join(options.workDir, 'runs');
  const simulator = await startSimulator({ provider: 'aws' });
  const receiver = await startReceiver();
  const agents: ChildProcess[] = [];
  try {
    const deadline = Date.now() + (options.leadMs ?? 60_000);
    simulator.trigger({ kind: 'terminate', time: new Date(deadline).toISOString() });
    const config = writeConfig(options, simulator, receiver);
    if (options.journalText !== undefined) {
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(join(stateDir, 'journal.json'), options.journalText);
      writeFileSync(join(stateDir, 'journal.json.tmp-0123456789ab'), options.journalText.slice(0, 10));
    }

    const first = startAgent(options.cli, config);
    agents.push(first.child);
    await first.waitForLine(/interruption notice/, 15_000);
    await new Promise((resolve) => setTimeout(resolve, options.killAfterMs));
    await stopAgent(first.child, 'SIGKILL');
    // A step's program started just before the kill still writes its start line (it outlives the agent).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const atKill = readJournal(stateDir);
    const runsAtKill = countRuns(runsDir, receiver);
    const journaledAtKill = Object.keys(atKill.journal?.notices[0]?.steps ?? {});
    await new Promise((resolve) => setTimeout(resolve, options.restartAfterMs ?? 0));
    // The notice time has whole seconds (IMDS form): compare with what the agent will see.
    const resumable = Date.now() < Math.floor(deadline / 1000) * 1000;
    // A plan not yet in the journal at the kill is a new notice to the restarted agent: it runs
    // in full, with the floor budget when the deadline has passed.
    const statusAtKill = atKill.journal?.notices[0]?.status;
    const runsAgain = resumable || statusAtKill === undefined;

    const second = startAgent(options.cli, config);
    agents.push(second.child);
    // Up and watching first: a SIGTERM before its handlers are installed would just kill it.
    await second.waitForLine(/daemon watching/, 15_000);
    const finished = await waitUntil(() => readJournal(stateDir).journal?.notices.at(-1)?.status === 'done', 20_000);
    // Room for a wrongly repeated step to show itself before counting.
    await new Promise((resolve) => setTimeout(resolve, STEP_MS + 200));
    await stopAgent(second.child, 'SIGTERM');
    const final = readJournal(stateDir);
    const entry = final.journal?.notices.at(-1);
    const runsTotal = countRuns(runsDir, receiver);

    const problems: string[] = [];
    if (atKill.state === 'corrupt') problems.push('the journal on disk was corrupt at the kill');
    if (final.state !== 'valid') problems.push(`the final journal is ${final.state}`);
    if (!finished) problems.push('the restarted agent did not finish the plan within 20 s');
    if (second.child.exitCode !== 0) problems.push(`the restarted agent exited with ${second.child.exitCode ?? second.child.signalCode}`);
    // A step journaled as finished never runs again; any other step runs once more after the restart,
    // unless the notice deadline passed while the agent was down.
    for (const [step, runs] of Object.entries(runsTotal)) {
      const journaled = journaledAtKill.includes(step);
      const expected = runsAtKill[step]! + (journaled || !runsAgain ? 0 : 1);
      if (runs !== expected) {
        problems.push(`step ${step}: ${runsAtKill[step]} runs at the kill (${journaled ? 'journaled as finished' : 'not journaled'}), ${runs} in all; expected ${expected}`);
      }
    }
    for (const [step, summary] of Object.entries(entry?.steps ?? {})) if (summary.status !== 'ok') problems.push(`step ${step} ended ${summary.status}`);
    if (!runsAgain && statusAtKill === 'in_progress' && !second.lines.some((line) => line.includes('not resuming an interrupted plan'))) {
      problems.push('the restarted agent did not say it was not resuming a plan whose deadline had passed');
    }
    const leftovers = existsSync(stateDir) ? readdirSync(stateDir).filter((name) => name.includes('.tmp-')) : [];
    if (leftovers.length > 0) problems.push(`temp files left in the state dir: ${leftovers.join(', ')}`);
    if (options.journalText !== undefined && !readdirSync(stateDir).some((name) => name.startsWith('journal.json.corrupt-'))) {
      problems.push('the planted corrupt journal was not moved aside');
    }
    return {
      killAfterMs: options.killAfterMs,
      runsAtKill,
      runsTotal,
      journaledAtKill,
      journalAtKill: atKill.state,
      finalSteps: Object.fromEntries(Object.entries(entry?.steps ?? {}).map(([step, summary]) => [step, summary.status])),
      finalStatus: entry?.status,
      runsAgain,
      problems,
    };
  } finally {
    for (const agent of agents) await stopAgent(agent, 'SIGKILL');
    await simulator.close();
    await receiver.close();
  }
}
