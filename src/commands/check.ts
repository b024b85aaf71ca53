import type { Config } from '../config/types.js';
import { providerOptions } from '../daemon/provider-settings.js';
import { formatDuration } from '../lib/duration.js';
import { ConfigError, errorMessage, EXIT_CONFIG } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { InstanceFacts, SourceName } from '../notice/notice.js';
import { describeStepKinds, stepKinds } from '../plan/kinds.js';
import { directoryWritable } from '../steps/checks.js';
import { checkSync } from '../steps/snapshot/check.js';
import type { CheckResult } from '../steps/types.js';
import { findStepType } from '../steps/registry.js';
import { HOP_LIMIT_WARNING, probeAwsToken, type TokenProbe } from '../providers/aws/imds.js';
import { detectProvider } from '../providers/detect.js';
import { createProvider } from '../providers/registry.js';
import type { MetadataRead } from '../providers/types.js';
import { readOnce } from '../providers/metadata/read-once.js';
import { checkAsServiceUser, describeCheckingUser } from './check-user.js';
import { loadConfigFromFlags, type ConfigFlags } from './flags.js';

/** One line of the report: what was checked, ✓ or ✗, and why. */
export interface CheckLine {
  check: string;
  ok: boolean;
  reason: string;
}

export interface CheckDeps {
  loadConfig(): Promise<Config>;
  /** DMI folder for provider detection (tests point it at a fixture). */
  dmiDir?: string;
  log?: Logger;
}

export interface CheckReport {
  ok: boolean;
  /** False when the config itself is invalid: nothing else could be checked. */
  configValid: boolean;
  checks: CheckLine[];
}

const line = (check: string, ok: boolean, reason: string): CheckLine => ({ check, ok, reason });

/**
 * Checks that the agent could do its job here, without doing any of it: the config is
 * valid, the provider is known, the metadata service answers, the state directory is
 * writable, and each step finds what it needs. Sends nothing, signals no one.
 */
export async function runChecks(deps: CheckDeps): Promise<CheckReport> {
  const log = deps.log ?? silentLogger();
  // Files, pidfiles and credentials are looked at with this process's access: say whose.
  const checkedAs = line('checked as', true, describeCheckingUser());
  let config: Config;
  try {
    config = await deps.loadConfig();
  } catch (error) {
    const reason = error instanceof ConfigError ? error.message : `cannot load: ${errorMessage(error)}`;
    return { ok: false, configValid: false, checks: [line('config', false, reason), checkedAs] };
  }
  const steps = config.steps.length;
  const checks = [line('config', true, `${config.file ?? 'defaults and overrides (no file)'}: valid, ${steps} step${steps === 1 ? '' : 's'}`), checkedAs];
  const metadata = checkMetadata(config, deps.dmiDir, log);
  // Steps run alongside the metadata check; one that needs the instance's facts waits for them.
  const instance = metadata.then((result) => result.facts);
  const [{ lines }, stateDir, stepLines, syncLines] = await Promise.all([metadata, checkStateDir(config.stateDir), checkSteps(config, log, instance), checkSyncs(config, log, instance)]);
  checks.push(...lines, stateDir, ...stepLines, ...syncLines);
  return { ok: checks.every((entry) => entry.ok), configValid: true, checks };
}

interface MetadataCheck {
  lines: CheckLine[];
  /** What the metadata service said of this instance; undefined when it could not be read. */
  facts?: InstanceFacts;
}

/** The own Node watched beside a cloud: check reads it too (its line is among the metadata lines). */
function alongsideNote(config: Config, name: SourceName): string {
  return config.kubernetes.watchNode && name !== 'kubernetes' ? '; and the own Node (kubernetes.watchNode)' : '';
}

async function checkMetadata(config: Config, dmiDir: string | undefined, log: Logger): Promise<MetadataCheck> {
  let name: SourceName;
  const lines: CheckLine[] = [];
  if (config.provider === 'auto') {
    try {
      const detected = await detectProvider({ probe: true, metadataUrl: config.metadataUrl ?? undefined, log, ...(dmiDir ? { dmiDir } : {}) });
      name = detected.provider;
      lines.push(line('provider', true, `${name}, detected: ${detected.how}${alongsideNote(config, name)}`));
    } catch (error) {
      return { lines: [line('provider', false, errorMessage(error))] };
    }
  } else {
    name = config.provider;
    lines.push(line('provider', true, `${name}, set in the config (no detection)${alongsideNote(config, name)}`));
  }
  const options = providerOptions(config, name);
  const timeoutMs = (name === 'azure' ? config.azure.firstCallTimeoutMs : Math.max(config.requestTimeoutMs, config.aws.tokenTimeoutMs)) + 1000;
  const controller = new AbortController();
  let result;
  let token: TokenProbe | undefined;
  try {
    [result, token] = await Promise.all([
      createProvider(name, options, log).then((provider) => readOnce(provider, { timeoutMs, log })),
      name === 'aws' ? probeAwsToken(options, log, controller.signal) : undefined,
    ]);
  } catch (error) {
    return { lines: [...lines, line('metadata', false, `reading ${options.baseUrl} failed: ${errorMessage(error)}`)] };
  } finally {
    controller.abort();
  }
  if (token?.read) lines.push(describeToken(token.read, token.timedOut, config));
  const firstOfEach = new Map<string, MetadataRead>();
  for (const read of result.reads) if (read.source !== 'token' && !firstOfEach.has(read.source)) firstOfEach.set(read.source, read);
  for (const read of firstOfEach.values()) lines.push(describeRead(read));
  if (result.timedOut && firstOfEach.size === 0) {
    lines.push(line('metadata', false, `no answer from ${options.baseUrl} within ${formatDuration(timeoutMs)}: is this a ${name} VM, and is metadataUrl right?`));
  }
  for (const event of result.events) {
    if (event.type !== 'notice') continue;
    const { notice } = event;
    const when = notice.deadline ? `, deadline ${notice.deadline.toISOString()}` : '';
    lines.push(line('notice', false, `a ${notice.kind} notice is pending right now${when}: this machine is being interrupted`));
  }
  const facts = describeFacts(result.facts);
  if (facts) lines.push(line('instance', true, facts));
  if (name === 'gcp') lines.push(describeGcpPreemption(config));
  return { lines, facts: result.facts };
}

/** What a GCP Spot preemption leaves the plan, which the metadata server cannot tell. */
function describeGcpPreemption(config: Config): CheckLine {
  const notice = config.gcp.preemptionNoticeDurationMs;
  const budget = formatDuration(notice + 30_000);
  const given = notice > 0 ? `gcp.preemptionNoticeDuration ${formatDuration(notice)} of notice while the VM runs, then` : 'no preemption notice duration (gcp.preemptionNoticeDuration 0s): only';
  return line(
    'gcp preemption budget',
    true,
    `${budget} from preempted=TRUE: ${given} the 30 s between the soft-off and the power-off; ` +
      'set gcp.preemptionNoticeDuration to what the VM was created with (0s or 120s), and mind that skipGuestOsShutdown removes the 30 s',
  );
}

function describeRead(read: MetadataRead): CheckLine {
  const check = `metadata ${read.source}`;
  const took = `in ${formatDuration(read.ms)}`;
  if (read.ok) return line(check, true, read.status === 404 ? `nothing there (HTTP 404, the normal answer) ${took}` : `HTTP ${read.status ?? 200} ${took}`);
  return line(check, false, `${read.error ?? 'failed'} (${took})`);
}

function describeToken(read: MetadataRead, timedOut: boolean, config: Config): CheckLine {
  if (read.ok) return line('metadata IMDSv2 token', true, `PUT /latest/api/token answered in ${formatDuration(read.ms)}`);
  const fallback = config.aws.allowImdsV1 ? ' (aws.allowImdsV1 is set: the agent would poll with IMDSv1 meanwhile)' : '';
  return line('metadata IMDSv2 token', false, `${timedOut ? HOP_LIMIT_WARNING : read.error ?? 'token PUT failed'}${fallback}`);
}

function describeFacts(facts: InstanceFacts): string | undefined {
  const details = [facts.type, facts.zone ?? facts.region, facts.lifecycle].filter(Boolean);
  const name = facts.id ?? facts.name;
  if (!name) return undefined;
  return details.length > 0 ? `${name} (${details.join(', ')})` : name;
}

/** The journal lives in stateDir: it must be writable, or creatable under a writable parent. */
async function checkStateDir(stateDir: string): Promise<CheckLine> {
  const result = await directoryWritable(stateDir);
  return line('stateDir', result.ok, result.ok ? `${stateDir} ${result.reason}` : `${result.reason}: the journal of handled notices lives in ${stateDir}`);
}

async function checkSteps(config: Config, log: Logger, instance: Promise<InstanceFacts | undefined>): Promise<CheckLine[]> {
  const controller = new AbortController();
  const perStep = await Promise.all(
    config.steps.map(async (step): Promise<CheckLine[]> => {
      const check = `step ${step.name}`;
      const stepType = findStepType(step.type);
      if (!stepType) return [line(check, false, `unknown step type ${step.type}`)];
      const kinds = line(check, true, `runs on ${describeStepKinds(stepKinds(step, findStepType))}`);
      if (!stepType.check) return [line(check, true, `${stepType.describe(step.options)} (nothing to check for ${step.type} steps)`), kinds];
      let results: CheckResult[];
      try {
        results = await stepType.check(step.options, { signal: controller.signal, log, instance });
      } catch (error) {
        return [line(check, false, `could not check: ${errorMessage(error)}`), kinds];
      }
      return [...results.map((result) => line(check, result.ok, `${result.what}: ${result.reason}`)), kinds];
    }),
  );
  return perStep.flat();
}

/** Each `sync:` entry: its paths and its destination, checked as a snapshot step's. */
async function checkSyncs(config: Config, log: Logger, instance: Promise<InstanceFacts | undefined>): Promise<CheckLine[]> {
  const controller = new AbortController();
  const perSync = await Promise.all(
    Object.entries(config.sync).map(async ([name, entry]) => {
      const results = await checkSync(entry, { signal: controller.signal, log, instance });
      return results.map((result) => line(`sync ${name}`, result.ok, `${result.what}: ${result.reason}`));
    }),
  );
  return perSync.flat();
}

/** The ✓/✗ table, one check per line; multi-line reasons are indented under theirs. */
export function formatReport(report: CheckReport): string {
  const width = Math.max(...report.checks.map((entry) => entry.check.length));
  const rows = report.checks.map((entry) => {
    const [first, ...rest] = entry.reason.split('\n');
    const indent = ' '.repeat(width + 4);
    return [`${entry.ok ? '✓' : '✗'} ${entry.check.padEnd(width)}  ${first}`, ...rest.map((text) => indent + text.trim())].join('\n');
  });
  const failed = report.checks.filter((entry) => !entry.ok).length;
  const verdict = failed === 0 ? 'all checks passed' : `${failed} check${failed === 1 ? '' : 's'} failed`;
  return `${rows.join('\n')}\n\n${verdict}\n`;
}

export type CheckArgs = ConfigFlags & { json?: boolean; asUser?: string | undefined };

/**
 * `preemptd check`: exit 0 when every check passes, 78 when the config is invalid, 1
 * otherwise. As root, it checks as the service's user (`--as-user`, else the unit's User=).
 */
export async function checkCommand(args: CheckArgs): Promise<void> {
  const asService = await checkAsServiceUser(args.asUser);
  if (asService !== undefined) {
    process.exitCode = asService;
    return;
  }
  const report = await runChecks({ loadConfig: () => loadConfigFromFlags(args) });
  process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  process.exitCode = report.ok ? 0 : report.configValid ? 1 : EXIT_CONFIG;
}
