#!/usr/bin/env node
import { PROGRAM_HELP } from './commands/program-help-text.js';
import { leaveOptimizingCompilersOff } from './lib/optimizing-compilers.js';
import { keepYoungGenerationSmall } from './lib/young-generation.js';

const args = process.argv.slice(2);

/**
 * `preemptd --help` is printed as generated from the declarations (npm run generate), without
 * loading yargs and the declarations: the bundle's start to exit went from 88 to 39 ms
 * (`node -e 0`: 29 ms; docs/benchmarks.md). yargs wraps at a terminal's width below 80 columns and not at all under
 * YARGS_DISABLE_WRAP: those go to yargs, as does every other command line but a plain `run`.
 */
const programHelp = args.length === 1 && (args[0] === '--help' || args[0] === '-h') && !process.env.YARGS_DISABLE_WRAP && (process.stdout.columns ?? 80) >= 80;
// Before a command's modules load (loading them alone would grow it); `run` does it once
// started (commands/run.ts), where the time to READY=1 counts, and help needs none.
if (!programHelp && args[0] !== 'run') keepYoungGenerationSmall();
// The agent, long-lived and mostly idle, starts without the optimizing compilers (their code
// stays resident once used), and turns them on when its config moves data (commands/run.ts).
if (args[0] === 'run') leaveOptimizingCompilersOff();
const plainRun = async () => args[0] === 'run' && (await (await import('./commands/run-line.js')).runPlainRunLine(args));
if (programHelp) process.stdout.write(`${PROGRAM_HELP}\n`);
// `run` as the unit starts it skips yargs too (commands/run-line.ts); any other line goes to yargs.
else if (!(await plainRun())) await (await import('./commands/command-line.js')).runCommandLine(args);
