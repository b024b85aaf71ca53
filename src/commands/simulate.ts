import type { Config } from '../config/types.js';
import { formatDuration, parseDuration } from '../lib/duration.js';
import { PreemptdError } from '../lib/errors.js';
import { buildEvent } from '../notice/event.js';
import { hostFacts } from '../lib/host.js';
import { createLogger, scrubSecrets, scrubValue } from '../lib/log.js';
import { NOTICE_KINDS, noticeId, noticeToJSON, type Notice, type NoticeKind } from '../notice/notice.js';
import { buildPlan, executePlan, type Plan } from '../plan/executor.js';
import { schedulePlan, type ScheduledRun } from '../plan/schedule.js';
import { findStepType } from '../steps/registry.js';
import { loadConfigFromFlags, type ConfigFlags } from './flags.js';

export type SimulateArgs = ConfigFlags & {
  kind: string;
  /** Time until the notice's deadline (`120s`), or `none` for an advisory notice. */
  deadline: string;
  dryRun?: boolean;
  json?: boolean;
};

/** A notice as a provider would yield it, marked as simulated wherever it shows (raw, id). */
export function syntheticNotice(kind: NoticeKind, deadlineInMs: number | null, now: number): Notice {
  return {
    id: noticeId('local', kind, `simulated-${now}`),
    provider: 'local',
    kind,
    deadline: deadlineInMs === null ? null : new Date(now + deadlineInMs),
    detectedAt: new Date(now),
    instance: { hostname: hostFacts().hostname },
    raw: { simulated: true, by: 'preemptd simulate' },
  };
}

function describeStart(run: ScheduledRun): string {
  if (run.mayNotStart) return 'may not start: the plan deadline can pass first';
  const waits = run.phase === 'finish' ? ['the notice steps', ...run.after] : run.after;
  if (waits.length === 0 && run.latestStartMs === 0) return 'at once';
  return `after ${waits.join(', ')} (by +${formatDuration(run.latestStartMs)})`;
}

/** The dry-run report: plan deadline, then one row per run in DAG order. */
export function formatDryRun(plan: Plan, config: Pick<Config, 'safetyMarginMs'>): string {
  const { notice } = plan;
  const runs = schedulePlan(plan, findStepType);
  const lines: string[] = [];
  const deadline = notice.deadline === null ? 'no deadline (advisory)' : `deadline in ${formatDuration(notice.deadline.getTime() - plan.builtAt)}`;
  const planDeadline =
    plan.planDeadline === null
      ? 'steps are bounded by their own timeouts only'
      : `plan deadline in ${formatDuration(plan.planDeadline - plan.builtAt)}${plan.floorBudget ? ' (minimumBudget: the notice left less)' : ` (safetyMargin ${formatDuration(config.safetyMarginMs)})`}`;
  lines.push(`Dry run of the plan for a simulated ${notice.kind} notice: ${deadline}; ${planDeadline}.`);
  lines.push('Nothing is sent, signalled or uploaded.', '');
  if (runs.length === 0) lines.push(`No step runs for a ${notice.kind} notice.`);
  else {
    const header = ['#', 'step', 'type', 'starts', 'budget', 'what it would do'];
    const rows = runs.map((run, index) => [String(index + 1), run.name, run.type, describeStart(run), formatDuration(run.budgetMs), run.does]);
    const widths = header.slice(0, -1).map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
    const format = (row: string[]) => row.map((cell, column) => (column < widths.length ? cell.padEnd(widths[column]!) : cell)).join('  ').trimEnd();
    lines.push(format(header), ...rows.map(format));
  }
  if (plan.excluded.length > 0) lines.push('', `Not run for ${notice.kind} (on:): ${plan.excluded.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** The dry run for scripts. Step options are left out: they can hold credentials (webhook URLs). */
function dryRunJSON(plan: Plan) {
  return {
    notice: noticeToJSON(plan.notice),
    planDeadline: plan.planDeadline === null ? null : new Date(plan.planDeadline).toISOString(),
    floorBudget: plan.floorBudget,
    runs: schedulePlan(plan, findStepType),
    excluded: plan.excluded,
  };
}

function parseArgs(args: SimulateArgs): { kind: NoticeKind; deadlineInMs: number | null } {
  if (!(NOTICE_KINDS as readonly string[]).includes(args.kind)) {
    throw new PreemptdError('ERR_USAGE', `--kind: got "${args.kind}": expected one of ${NOTICE_KINDS.join(', ')}`);
  }
  if (args.deadline === 'none') return { kind: args.kind as NoticeKind, deadlineInMs: null };
  const deadlineInMs = parseDuration(args.deadline);
  if (deadlineInMs === undefined) {
    throw new PreemptdError('ERR_USAGE', `--deadline: got "${args.deadline}": expected a duration such as 120s or 2m, or none`);
  }
  return { kind: args.kind as NoticeKind, deadlineInMs };
}

/**
 * `preemptd simulate`: builds the plan for a synthetic notice and prints it (`--dry-run`),
 * or runs it for real and prints the summary event, exactly as the daemon would.
 */
export async function simulateCommand(args: SimulateArgs): Promise<void> {
  const { kind, deadlineInMs } = parseArgs(args);
  const config = await loadConfigFromFlags(args);
  const now = Date.now();
  const notice = syntheticNotice(kind, deadlineInMs, now);
  const plan = buildPlan(notice, config, now, findStepType);
  if (args.dryRun) {
    // What steps would do can name a resolved secret (a token in a URL path): scrubbed as logs are.
    process.stdout.write(args.json ? `${JSON.stringify(scrubValue(dryRunJSON(plan)), null, 2)}\n` : scrubSecrets(formatDryRun(plan, config)));
    return;
  }
  // Logs go to stderr so stdout carries only the summary event.
  const log = createLogger({ level: config.logLevel, destination: process.stderr });
  const host = hostFacts();
  log.warn({ noticeId: notice.id, kind, steps: plan.steps.map((step) => step.name) }, 'simulate: running the plan for real against a synthetic notice');
  const result = await executePlan(plan, { log, host, lookup: findStepType });
  const event = buildEvent('plan.finished', notice, host, plan.planDeadline, result.steps);
  process.stdout.write(`${JSON.stringify(scrubValue(event), null, 2)}\n`);
  process.exitCode = result.steps.some((step) => step.status === 'failed' || step.status === 'timed_out') ? 1 : 0;
}
