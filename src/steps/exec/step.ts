import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { z } from 'zod';
import { showValue } from '../../lib/format.js';
import { errorMessage, StepFailure } from '../../lib/errors.js';
import type { Notice } from '../../notice/notice.js';
import { noticeView } from '../../notice/notice-view.js';
import { stopGroup } from './process-group.js';
import { CappedLines } from './output.js';
import { directoryExists, programFound } from '../checks.js';
import type { StepContext, StepType } from '../types.js';

export interface ExecOptions {
  /** argv: the program, then its arguments; no shell ever sees them. */
  command: string[];
  cwd: string | undefined;
  /** Added to preemptd's own environment. */
  env: Record<string, string>;
}

/** Output logged per stream before the rest is only counted. */
export const OUTPUT_CAP_BYTES = 64 * 1024;
/** Time between SIGTERM and SIGKILL when the step is cancelled. */
export const KILL_GRACE_MS = 2000;
/** How long stdout/stderr may stay open after the program exits (a grandchild holding them). */
const STREAM_LINGER_MS = 200;

const environment = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
  .superRefine((env, ctx) => {
    for (const name of Object.keys(env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `got ${showValue(name)}: expected a variable name such as CHECKPOINT_DIR` });
      }
    }
  });

export const execSchema = z
  .strictObject({
    command: z
      .array(z.string(), { message: 'expected a list: the program, then its arguments (no shell)' })
      .min(1, 'expected at least the program to run')
      .refine((argv) => argv.length === 0 || argv[0]!.trim() !== '', { path: [0], message: 'expected a program name or path' }),
    cwd: z.string().min(1).optional(),
    env: environment.default({}),
  })
  .transform((raw): ExecOptions => ({ command: raw.command, cwd: raw.cwd, env: raw.env }));

/** The notice as environment variables at `now`; empty strings where a fact is unknown. */
export function noticeEnvironment(notice: Notice, planDeadline: number | null, now: number): Record<string, string> {
  return {
    PREEMPTD_NOTICE_ID: notice.id,
    PREEMPTD_KIND: notice.kind,
    PREEMPTD_PROVIDER: notice.provider,
    PREEMPTD_DEADLINE: notice.deadline?.toISOString() ?? '',
    PREEMPTD_SECONDS_LEFT: String(noticeView(notice, now).secondsLeft ?? ''),
    PREEMPTD_DETECTED_AT: notice.detectedAt.toISOString(),
    PREEMPTD_INSTANCE_ID: notice.instance.id ?? '',
    PREEMPTD_PLAN_DEADLINE: planDeadline === null ? '' : new Date(planDeadline).toISOString(),
  };
}

function startFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'not found (ENOENT): check the program path and cwd';
  if (code === 'EACCES') return 'permission denied (EACCES): is it executable?';
  return errorMessage(error);
}

function logLines(context: StepContext, stream: 'stdout' | 'stderr'): CappedLines {
  return new CappedLines((line) => context.log.info({ stream, line }, 'exec output'), OUTPUT_CAP_BYTES);
}

/**
 * Runs the user's own command on a notice: no shell, the notice in its environment and as
 * JSON on stdin, in its own process group so a cancelled step stops everything it started.
 */
export const execStep = {
  type: 'exec',
  schema: execSchema,
  destructive: true,
  defaultTimeoutMs: () => 30_000,
  async run(options, context) {
    const [program, ...args] = options.command as [string, ...string[]];
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env, ...noticeEnvironment(context.notice, context.planDeadline, Date.now()) },
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const spawned = once(child, 'spawn').then(
      () => undefined,
      (error: unknown) => error,
    );
    const exited = once(child, 'exit').catch(() => undefined) as Promise<[number | null, NodeJS.Signals | null] | undefined>;
    const startError = await spawned;
    if (startError) throw new StepFailure(`cannot run ${program}: ${startFailure(startError)}`, { program });

    const pid = child.pid!;
    const onAbort = () => stopGroup(pid, KILL_GRACE_MS);
    context.signal.addEventListener('abort', onAbort, { once: true });
    if (context.signal.aborted) onAbort();
    context.progress({ pid });

    // A program that does not read its stdin closes the pipe: that is its business.
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(context.event('notice')));
    const stdout = logLines(context, 'stdout');
    const stderr = logLines(context, 'stderr');
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const streamsClosed = Promise.all([once(child.stdout, 'close'), once(child.stderr, 'close')]);

    try {
      const [code, signal] = (await exited)!;
      await Promise.race([streamsClosed, new Promise((resolve) => setTimeout(resolve, STREAM_LINGER_MS).unref())]);
      child.stdout.destroy();
      child.stderr.destroy();
      stdout.end();
      stderr.end();
      for (const [stream, lines] of [['stdout', stdout], ['stderr', stderr]] as const) {
        if (lines.dropped > 0) {
          context.log.warn({ stream, droppedBytes: lines.dropped }, `exec ${stream} truncated after ${OUTPUT_CAP_BYTES / 1024} KiB`);
        }
      }
      const detail = {
        program,
        pid,
        exitCode: code,
        ...(signal ? { signal } : {}),
        stdoutBytes: stdout.total,
        stderrBytes: stderr.total,
        ...(stdout.dropped + stderr.dropped > 0 ? { outputTruncated: true } : {}),
      };
      if (context.signal.aborted) throw new StepFailure(`${program} stopped at the step deadline`, detail);
      if (signal) throw new StepFailure(`${program} was killed by ${signal}`, detail);
      if (code !== 0) throw new StepFailure(`${program} exited with code ${code}`, detail);
      return detail;
    } finally {
      context.signal.removeEventListener('abort', onAbort);
    }
  },
  describe(options) {
    const [program, ...args] = options.command;
    return `run ${program}${args.length ? ` with ${args.length} argument${args.length === 1 ? '' : 's'}` : ''}`;
  },
  /** The program would start (found, executable) and its cwd exists; nothing is run. */
  check: async (options) => [
    await programFound(options.command[0]!, options.cwd),
    ...(options.cwd === undefined ? [] : [await directoryExists(options.cwd)]),
  ],
} satisfies StepType<ExecOptions>;
