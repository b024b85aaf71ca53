import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../lib/errors.js';
import { scrubSecrets } from '../lib/log.js';
import { NOTICE_KINDS, SOURCE_NAMES } from '../notice/notice.js';
import { absolutePath, duration, httpUrl, listenAddress, noticeKind, positiveDuration } from './fields.js';
import { compileNodeSignal, nodeSignal, nodeSignalSetting } from './node-signals.js';
import { showValue } from '../lib/format.js';
import { formatDuration } from '../lib/duration.js';
import { describeIssue, formatPath, zodIssues } from './issues.js';
import { compileSteps, type StepEntryType } from './step-entries.js';
import { syncSectionSchema } from './sync-schema.js';
import type { Config, StepConfig } from './types.js';

export const SHUTDOWN_SIGNAL_ACTIONS = ['exit', 'run-plan'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const PROVIDER_CHOICES = ['auto', ...SOURCE_NAMES] as const;
export const MAX_TOKEN_TTL_SECONDS = 21_600;
export const MAX_HANG_TIMEOUT_SECONDS = 3_600;
/** The Spot preemption notice durations GCE accepts (`preemptionNoticeDuration`, preview): none or 120 s. */
export const GCP_PREEMPTION_NOTICE_DURATIONS_MS: readonly number[] = [0, 120_000];

/**
 * Every top-level default, in config-file form. The schema, the overridable keys and
 * docs/config.md all follow this one object.
 */
export const CONFIG_DEFAULTS = {
  provider: 'auto',
  metadataUrl: null,
  pollInterval: '1s',
  requestTimeout: '2s',
  stateDir: '/var/lib/preemptd',
  noticeFile: '/run/preemptd/notice.json',
  safetyMargin: '5s',
  minimumBudget: '10s',
  logLevel: 'info',
  onShutdownSignal: 'exit',
  aws: { allowImdsV1: false, tokenTtl: MAX_TOKEN_TTL_SECONDS, tokenTimeout: '2s', lifecycleTimeout: '1h', hibernateBudget: '2s' },
  gcp: { hangTimeout: 60, preemptionNoticeDuration: '0s' },
  azure: { ackWhenDone: false, firstCallTimeout: '2m' },
  alibaba: { hardened: true, tokenTtl: MAX_TOKEN_TTL_SECONDS },
  kubernetes: { node: null, kubeconfig: null, watchNode: false, signals: [] },
  server: { enabled: true, listen: '127.0.0.1:9464' },
  // Rebalance is advisory: the machine is not going away yet.
  readiness: { notReadyOn: NOTICE_KINDS.filter((kind) => kind !== 'rebalance') },
  sync: {},
  steps: [],
} as const;

/** When a changed setting takes effect on a reload (SIGHUP). */
export type TakesEffect = 'reload' | 'restart';

/** A TakesEffect for every top-level setting; a section (a mapping) is classified whole or key by key. */
export type SettingEffects<T> = { readonly [K in keyof T]: TakesEffect | SectionEffects<T[K]> };
type SectionEffects<V> = V extends readonly unknown[] ? never : V extends object ? { readonly [S in keyof V]: TakesEffect } : never;

/**
 * When a change to each setting takes effect: `reload` from the next notice on (logLevel at
 * once), `restart` only when the agent starts, because what reads it is set up once: the
 * provider and its watch loop, the journal, the local server. A reload keeps the running
 * value of a `restart` setting. The compiler insists on every key of the schema; a test holds
 * docs/operations.md to this list.
 */
export const TAKES_EFFECT = {
  provider: 'restart',
  metadataUrl: 'restart',
  pollInterval: 'restart',
  requestTimeout: 'restart',
  stateDir: 'restart',
  noticeFile: 'restart',
  safetyMargin: 'reload',
  minimumBudget: 'reload',
  logLevel: 'reload',
  onShutdownSignal: 'reload',
  aws: 'restart',
  gcp: 'restart',
  azure: { ackWhenDone: 'reload', firstCallTimeout: 'restart' },
  alibaba: 'restart',
  kubernetes: 'restart',
  server: 'restart',
  readiness: 'reload',
  // The sync loops start with the agent.
  sync: 'restart',
  steps: 'reload',
} as const satisfies SettingEffects<Settings>;

function wholeSeconds(max: number) {
  return z.number().int().min(1).max(max);
}

const D = CONFIG_DEFAULTS;

/**
 * The top level of a config file. `prefault` runs defaults through the schema, so they
 * are compiled exactly like user values. Steps are only shaped here: their entries are
 * checked against the step type registry in steps.ts.
 */
export const topLevelSchema = z.strictObject({
  provider: z.enum(PROVIDER_CHOICES).prefault(D.provider),
  metadataUrl: httpUrl().nullable().prefault(D.metadataUrl),
  pollInterval: positiveDuration().prefault(D.pollInterval),
  requestTimeout: positiveDuration().prefault(D.requestTimeout),
  stateDir: z.string().min(1).prefault(D.stateDir),
  noticeFile: absolutePath().nullable().prefault(D.noticeFile),
  safetyMargin: duration().prefault(D.safetyMargin),
  minimumBudget: positiveDuration().prefault(D.minimumBudget),
  logLevel: z.enum(LOG_LEVELS).prefault(D.logLevel),
  onShutdownSignal: z.enum(SHUTDOWN_SIGNAL_ACTIONS).prefault(D.onShutdownSignal),
  aws: z
    .strictObject({
      allowImdsV1: z.boolean().prefault(D.aws.allowImdsV1),
      tokenTtl: wholeSeconds(MAX_TOKEN_TTL_SECONDS).prefault(D.aws.tokenTtl),
      tokenTimeout: positiveDuration().prefault(D.aws.tokenTimeout),
      lifecycleTimeout: positiveDuration().prefault(D.aws.lifecycleTimeout),
      hibernateBudget: positiveDuration().prefault(D.aws.hibernateBudget),
    })
    .prefault({}),
  gcp: z
    .strictObject({
      hangTimeout: wholeSeconds(MAX_HANG_TIMEOUT_SECONDS).prefault(D.gcp.hangTimeout),
      preemptionNoticeDuration: duration()
        .refine((ms) => GCP_PREEMPTION_NOTICE_DURATIONS_MS.includes(ms), {
          error: (issue) => `got ${formatDuration(issue.input as number)}: expected 0s or 120s, the Spot preemption notice durations GCE accepts`,
        })
        .prefault(D.gcp.preemptionNoticeDuration),
    })
    .prefault({}),
  azure: z
    .strictObject({
      ackWhenDone: z.boolean().prefault(D.azure.ackWhenDone),
      firstCallTimeout: positiveDuration().prefault(D.azure.firstCallTimeout),
    })
    .prefault({}),
  alibaba: z
    .strictObject({
      hardened: z.boolean().prefault(D.alibaba.hardened),
      tokenTtl: wholeSeconds(MAX_TOKEN_TTL_SECONDS).prefault(D.alibaba.tokenTtl),
    })
    .prefault({}),
  kubernetes: z
    .strictObject({
      node: z.string().min(1).nullable().prefault(D.kubernetes.node),
      kubeconfig: absolutePath().nullable().prefault(D.kubernetes.kubeconfig),
      watchNode: z.boolean().prefault(D.kubernetes.watchNode),
      signals: z.array(nodeSignal()).prefault([]),
    })
    .prefault({}),
  server: z
    .strictObject({
      enabled: z.boolean().prefault(D.server.enabled),
      listen: listenAddress().prefault(D.server.listen),
    })
    .prefault({}),
  readiness: z
    .strictObject({
      notReadyOn: z.array(noticeKind()).prefault(D.readiness.notReadyOn),
    })
    .prefault({}),
  sync: syncSectionSchema.prefault({}),
  steps: z.array(z.unknown()).prefault([]),
});

/** Every setting in config-file form after validation (durations in ms), with the steps compiled. */
export type Settings = Omit<z.output<typeof topLevelSchema>, 'steps'> & { steps: StepConfig[] };

/** Settings → Config: `pollInterval` becomes `pollIntervalMs`, `server.listen` becomes `server.host` and `server.port`. */
export function compileSettings(settings: Settings): Omit<Config, 'file'> {
  return {
    provider: settings.provider,
    metadataUrl: settings.metadataUrl,
    pollIntervalMs: settings.pollInterval,
    requestTimeoutMs: settings.requestTimeout,
    stateDir: settings.stateDir,
    noticeFile: settings.noticeFile,
    safetyMarginMs: settings.safetyMargin,
    minimumBudgetMs: settings.minimumBudget,
    logLevel: settings.logLevel,
    onShutdownSignal: settings.onShutdownSignal,
    aws: {
      allowImdsV1: settings.aws.allowImdsV1,
      tokenTtlSeconds: settings.aws.tokenTtl,
      tokenTimeoutMs: settings.aws.tokenTimeout,
      lifecycleTimeoutMs: settings.aws.lifecycleTimeout,
      hibernateBudgetMs: settings.aws.hibernateBudget,
    },
    gcp: { hangTimeoutSeconds: settings.gcp.hangTimeout, preemptionNoticeDurationMs: settings.gcp.preemptionNoticeDuration },
    azure: { ackWhenDone: settings.azure.ackWhenDone, firstCallTimeoutMs: settings.azure.firstCallTimeout },
    alibaba: { hardened: settings.alibaba.hardened, tokenTtlSeconds: settings.alibaba.tokenTtl },
    kubernetes: { node: settings.kubernetes.node, kubeconfig: settings.kubernetes.kubeconfig, watchNode: settings.kubernetes.watchNode, signals: settings.kubernetes.signals.map(compileNodeSignal) },
    server: { enabled: settings.server.enabled, ...settings.server.listen },
    readiness: { notReadyOn: [...new Set(settings.readiness.notReadyOn)] },
    sync: settings.sync,
    steps: settings.steps,
  };
}

/** Config → Settings, the inverse of compileSettings: what a reload compares, under config-file names. */
export function settingsOf(config: Config): Settings {
  return {
    provider: config.provider,
    metadataUrl: config.metadataUrl,
    pollInterval: config.pollIntervalMs,
    requestTimeout: config.requestTimeoutMs,
    stateDir: config.stateDir,
    noticeFile: config.noticeFile,
    safetyMargin: config.safetyMarginMs,
    minimumBudget: config.minimumBudgetMs,
    logLevel: config.logLevel,
    onShutdownSignal: config.onShutdownSignal,
    aws: {
      allowImdsV1: config.aws.allowImdsV1,
      tokenTtl: config.aws.tokenTtlSeconds,
      tokenTimeout: config.aws.tokenTimeoutMs,
      lifecycleTimeout: config.aws.lifecycleTimeoutMs,
      hibernateBudget: config.aws.hibernateBudgetMs,
    },
    gcp: { hangTimeout: config.gcp.hangTimeoutSeconds, preemptionNoticeDuration: config.gcp.preemptionNoticeDurationMs },
    azure: { ackWhenDone: config.azure.ackWhenDone, firstCallTimeout: config.azure.firstCallTimeoutMs },
    alibaba: { hardened: config.alibaba.hardened, tokenTtl: config.alibaba.tokenTtlSeconds },
    kubernetes: { node: config.kubernetes.node, kubeconfig: config.kubernetes.kubeconfig, watchNode: config.kubernetes.watchNode, signals: config.kubernetes.signals.map(nodeSignalSetting) },
    server: { enabled: config.server.enabled, listen: { host: config.server.host, port: config.server.port } },
    readiness: { notReadyOn: config.readiness.notReadyOn },
    sync: config.sync,
    steps: config.steps,
  };
}


/** Dotted paths of every setting that is a single value (what env and flags may override). */
export function settingPaths(): string[][] {
  const paths: string[][] = [];
  const walk = (node: Record<string, unknown>, prefix: string[]) => {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'steps' || key === 'sync') continue;
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) walk(value as Record<string, unknown>, [...prefix, key]);
      else paths.push([...prefix, key]);
    }
  };
  walk(CONFIG_DEFAULTS, []);
  return paths;
}

export interface CompileOptions {
  /** The file the config came from, named in every message. */
  file?: string;
  /** The step type registry (STEP_TYPES of steps/registry.ts, or a test's own types). */
  stepTypes: readonly StepEntryType[];
}

export const EXPECTED_TOP_LEVEL = 'expected a mapping of settings such as provider, pollInterval, stateDir and steps';

export function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `a list`, `a mapping`, or the value itself: what a message says was found. */
export function describeShape(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  return isMapping(value) ? 'a mapping' : showValue(value);
}

/** Validates and compiles; returns every issue rather than stopping at the first. */
export function validateConfig(raw: unknown, stepTypes: readonly StepEntryType[]): { config?: Omit<Config, 'file'>; issues: ConfigIssue[] } {
  if (!isMapping(raw)) return { issues: [{ path: '', message: `got ${describeShape(raw)} at the top level: ${EXPECTED_TOP_LEVEL}` }] };
  const parsed = topLevelSchema.safeParse(raw, { error: describeIssue });
  const issues = parsed.success ? [] : zodIssues(parsed.error, [], raw);
  const steps = compileSteps(Array.isArray(raw.steps) ? raw.steps : [], stepTypes);
  issues.push(...steps.issues, ...unknownSyncs(steps.steps, parsed.success ? Object.keys(parsed.data.sync) : []));
  if (!parsed.success || issues.length > 0) return { issues };
  return { issues, config: compileSettings({ ...parsed.data, steps: steps.steps }) };
}

/** A step option `sync:` must name an entry of `sync:`. */
function unknownSyncs(steps: readonly StepConfig[], names: readonly string[]): ConfigIssue[] {
  return steps.flatMap((step, index) => {
    const sync = isMapping(step.options) ? step.options.sync : undefined;
    if (typeof sync !== 'string' || names.includes(sync)) return [];
    const known = names.length ? `one of ${names.join(', ')}` : 'an entry of the top-level sync: section (there is none)';
    return [{ path: formatPath(['steps', index, step.type, 'sync']), message: `got ${showValue(sync)}: expected ${known}` }];
  });
}

/**
 * Pure: validates an already parsed (and reference-resolved) config and compiles it.
 * Throws ConfigError with every issue found.
 */
export function compileConfig(raw: unknown, options: CompileOptions): Config {
  const { config, issues } = validateConfig(raw, options.stepTypes);
  if (!config) throw configError(options.file, issues);
  return { file: options.file, ...config };
}

/** ConfigError whose messages cannot carry a resolved secret. */
export function configError(file: string | undefined, issues: readonly ConfigIssue[]): ConfigError {
  return new ConfigError(file, issues.map((issue) => ({ path: issue.path, message: scrubSecrets(issue.message) })));
}
