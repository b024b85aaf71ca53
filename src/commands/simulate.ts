import type { Config } from '../config/types.js';
import { durationProblem, formatDuration, parseDuration } from '../lib/duration.js';
import { PreemptdError } from '../lib/errors.js';
import { buildEvent } from '../notice/event.js';
import { hostFacts } from '../lib/host.js';
import { createLogger, scrubSecrets, scrubValue } from '../lib/log.js';
import { ADVISORY_KINDS, isAdvisory, NOTICE_KINDS, noticeId, noticeToJSON, type Notice, type NoticeKind } from '../notice/notice.js';
import { buildPlan, executePlan, type Plan } from '../plan/executor.js';
import { describeStepKinds, skipReason, stepKinds } from '../plan/kinds.js';
import { previewPlan, type StepPreview } from '../plan/preview.js';
import { schedulePlan, type ScheduledRun } from '../plan/schedule.js';
import { findStepType } from '../steps/registry.js';
import { loadConfigFromFlags, type ConfigFlags } from './flags.js';

export type SimulateArgs = ConfigFlags & {
  kind: string;
  /** Time until the notice's deadline (`120s`), or `none` for an advisory notice. */
  deadline: string;
  /** Explicitly dry (the default); `--no-dry-run` alone is refused: real effects need `run`. */
  dryRun?: boolean;
  /** Run the steps for real: send, signal, upload. */
  run?: boolean;
  json?: boolean;
  /** A maintenance notice that leaves the VM running (a live migration). */
  advisory?: boolean;
};

/** A notice as a provider would yield it, marked as simulated wherever it shows (raw, id). */
export function syntheticNotice(kind: NoticeKind, deadlineInMs: number | null, now: number, advisory = false): Notice {
  return {
    ...(advisory ? { advisory: true } : {}),
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

/** Runs the plan deadline can overtake before they start: a plan with any does not fit its window. */
function lateRuns(runs: ScheduledRun[]): string[] {
  return runs.filter((run) => run.mayNotStart).map((run) => run.name);
}

/** The dry-run report: plan deadline, one row per run in DAG order, then which kinds each step runs on and the verdict. */
export function formatDryRun(plan: Plan, config: Pick<Config, 'safetyMarginMs' | 'steps'>, previews: StepPreview[] = []): string {
  const { notice } = plan;
  const runs = schedulePlan(plan, findStepType);
  const lines: string[] = [];
  const deadline = notice.deadline === null ? 'no deadline (advisory)' : `deadline in ${formatDuration(notice.deadline.getTime() - plan.builtAt)}`;
  const why = plan.floorBudget
    ? 'minimumBudget: the notice left less'
    : notice.kind === 'hibernate'
      ? 'a hibernate gets no warning: no safetyMargin, quickest steps first; on AWS its deadline is aws.hibernateBudget'
      : `safetyMargin ${formatDuration(config.safetyMarginMs)}`;
  const planDeadline = plan.planDeadline === null ? 'steps are bounded by their own timeouts only' : `plan deadline in ${formatDuration(plan.planDeadline - plan.builtAt)} (${why})`;
  lines.push(`Dry run of the plan for a simulated ${notice.kind} notice: ${deadline}; ${planDeadline}.`);
  if (isAdvisory(notice)) lines.push(`The notice is advisory (the VM keeps running): destructive steps run only when their on: lists ${notice.kind}.`);
  lines.push('Nothing is sent, signalled or uploaded.', '');
  if (runs.length === 0) lines.push(`No step runs for a ${notice.kind} notice.`);
  else lines.push(...table(['#', 'step', 'type', 'starts', 'budget', 'what it would do'], runs.map((run, index) => [String(index + 1), run.name, run.type, describeStart(run), formatDuration(run.budgetMs), run.does])));
  if (previews.length > 0) {
    lines.push('', 'What the steps would act on now (read only):');
    for (const { step, lines: seen, error } of previews) {
      if (error !== undefined) lines.push(`  ${step}: could not look (${error}); only its description above is known`);
      else lines.push(...seen.map((line) => `  ${step}: ${line}`));
    }
  }
  if (plan.excluded.length > 0) {
    const steps = config.steps.filter((step) => plan.excluded.includes(step.name));
    lines.push('', `Not run for this ${notice.kind} notice:`, ...table(null, steps.map((step) => [`  ${step.name}`, skipReason(step, notice, findStepType) ?? ''])));
  }
  if (config.steps.length > 0) lines.push('', 'Kinds each step runs on:', ...table(null, config.steps.map((step) => [`  ${step.name}`, describeStepKinds(stepKinds(step, findStepType))])));
  const late = lateRuns(runs);
  lines.push(
    '',
    late.length === 0
      ? 'Fits: every step can start before the plan deadline.'
      : `Does not fit: ${late.join(', ')} may not start before the plan deadline. Shorten timeouts (timeout:) or wait on fewer steps (after:).`,
  );
  return `${lines.join('\n')}\n`;
}

/** Rows padded into columns; the last column is left as it is. */
function table(header: string[] | null, rows: string[][]): string[] {
  const all = header ? [header, ...rows] : rows;
  const columns = all[0]!.length - 1;
  const widths = Array.from({ length: columns }, (_, column) => Math.max(...all.map((row) => row[column]!.length)));
  return all.map((row) => row.map((cell, column) => (column < columns ? cell.padEnd(widths[column]!) : cell)).join('  ').trimEnd());
}

/** The dry run for scripts. Step options are left out: they can hold credentials (webhook URLs). */
function dryRunJSON(plan: Plan, config: Pick<Config, 'steps'>, previews: StepPreview[]) {
  const runs = schedulePlan(plan, findStepType);
  return {
    notice: noticeToJSON(plan.notice),
    advisory: isAdvisory(plan.notice),
    planDeadline: plan.planDeadline === null ? null : new Date(plan.planDeadline).toISOString(),
    floorBudget: plan.floorBudget,
    fits: lateRuns(runs).length === 0,
    runs,
    excluded: config.steps
      .filter((step) => plan.excluded.includes(step.name))
      .map((step) => ({ name: step.name, reason: skipReason(step, plan.notice, findStepType) })),
    steps: config.steps.map((step) => ({ name: step.name, type: step.type, ...stepKinds(step, findStepType) })),
    previews,
  };
}

function parseArgs(args: SimulateArgs): { kind: NoticeKind; deadlineInMs: number | null; advisory: boolean } {
  if (!(NOTICE_KINDS as readonly string[]).includes(args.kind)) {
    throw new PreemptdError('ERR_USAGE', `--kind: got "${args.kind}": expected one of ${NOTICE_KINDS.join(', ')}`);
  }
  const kind = args.kind as NoticeKind;
  if (args.run && args.dryRun === true) throw new PreemptdError('ERR_USAGE', '--run and --dry-run contradict each other: give one (a rehearsal is dry unless --run is given)');
  if (args.dryRun === false && !args.run) {
    throw new PreemptdError('ERR_USAGE', '--no-dry-run: a rehearsal is dry unless --run is given; add --run to send webhooks, signal processes and upload snapshots for real');
  }
  if (args.advisory && kind !== 'maintenance') {
    const always = ADVISORY_KINDS.includes(kind) ? `${kind} notices are always advisory` : `a ${kind} notice ends the VM`;
    throw new PreemptdError('ERR_USAGE', `--advisory: only a maintenance notice may or may not end the VM (${always}); use it with --kind maintenance`);
  }
  const advisory = args.advisory === true;
  if (args.deadline === 'none') return { kind, deadlineInMs: null, advisory };
  const deadlineInMs = parseDuration(args.deadline);
  if (deadlineInMs === undefined) {
    throw new PreemptdError('ERR_USAGE', `--deadline: got "${args.deadline}": ${durationProblem(args.deadline)}, or none`);
  }
  return { kind, deadlineInMs, advisory };
}

/**
 * `preemptd simulate`: builds the plan for a synthetic notice and prints it, exiting 1 when
 * the plan does not fit its window (CI can gate on it); with `--run`, runs it for real and
 * prints the summary event, exactly as the daemon would.
 */
export async function simulateCommand(args: SimulateArgs): Promise<void> {
  const { kind, deadlineInMs, advisory } = parseArgs(args);
  const config = await loadConfigFromFlags(args);
  const now = Date.now();
  const notice = syntheticNotice(kind, deadlineInMs, now, advisory);
  const plan = buildPlan(notice, config, now, findStepType);
  if (!args.run) {
    const previews = await previewPlan(plan, findStepType, hostFacts());
    // What steps would do can name a resolved secret (a token in a URL path): scrubbed as logs are.
    process.stdout.write(args.json ? `${JSON.stringify(scrubValue(dryRunJSON(plan, config, previews)), null, 2)}\n` : scrubSecrets(formatDryRun(plan, config, previews)));
    process.exitCode = lateRuns(schedulePlan(plan, findStepType)).length === 0 ? 0 : 1;
    return;
  }
  // Logs go to stderr so stdout carries only the summary event (JSON, with or without --json).
  const log = createLogger({ level: config.logLevel, destination: process.stderr });
  const host = hostFacts();
  log.warn({ noticeId: notice.id, kind, steps: plan.steps.map((step) => step.name) }, 'simulate: running the plan for real against a synthetic notice');
  const result = await executePlan(plan, { log, host, lookup: findStepType });
  const event = buildEvent('plan.finished', notice, host, plan.planDeadline, result.steps);
  process.stdout.write(`${JSON.stringify(scrubValue(event), null, 2)}\n`);
  process.exitCode = result.steps.some((step) => step.status === 'failed' || step.status === 'timed_out') ? 1 : 0;
}
