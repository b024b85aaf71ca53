import YAML from 'yaml';
import { ConfigError, type ConfigIssue } from '../lib/errors.js';
import { closest } from './issues.js';
import { settingPaths } from './schema.js';

/** One setting replaced from outside the file; `origin` names where (env var or flag). */
export interface ConfigOverride {
  path: string[];
  value: unknown;
  origin: string;
}

export const ENV_PREFIX = 'PREEMPTD_';
/** PREEMPTD_* variables that are not settings (read by the CLI itself: the config file's path). */
export const NON_SETTING_ENV = ['PREEMPTD_CONFIG'] as const;

/** Flags the CLI offers for the most common settings, by flag name. */
export const DEDICATED_FLAGS: Record<string, string[]> = {
  provider: ['provider'],
  'metadata-url': ['metadataUrl'],
  'poll-interval': ['pollInterval'],
  'state-dir': ['stateDir'],
  'log-level': ['logLevel'],
};

const SETTINGS = settingPaths();
const STEPS_MESSAGE = 'steps cannot be set from the environment or flags: edit the config file';

function screamingSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export function envName(path: readonly string[]): string {
  return ENV_PREFIX + path.map(screamingSnake).join('__');
}

const SETTING_BY_ENV = new Map(SETTINGS.map((path) => [envName(path), path]));

/**
 * Values are YAML scalars (`true`, `21600`, `2s`, `null`) or flow lists (`[terminate, stop]`,
 * for list settings); anything else stays the text given.
 */
function parseValue(text: string): unknown {
  try {
    const value: unknown = YAML.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? text : value;
  } catch {
    return text;
  }
}

function isSetting(path: readonly string[]): boolean {
  return SETTINGS.some((candidate) => candidate.join('.') === path.join('.'));
}

/** Why this override cannot apply, or undefined when it names a setting. */
export function overrideProblem(override: ConfigOverride): ConfigIssue | undefined {
  const { path, origin } = override;
  if (path[0] === 'steps') return { path: origin, message: STEPS_MESSAGE };
  if (isSetting(path)) return undefined;
  const dotted = path.join('.');
  const section = SETTINGS.filter((candidate) => candidate.length > path.length && candidate.slice(0, path.length).join('.') === dotted);
  if (section.length > 0) {
    return { path: origin, message: `${dotted} is a section: set one of ${section.map((candidate) => candidate.join('.')).join(', ')}` };
  }
  return { path: origin, message: `got ${dotted || '(empty)'}: not a setting; expected one of ${SETTINGS.map((candidate) => candidate.join('.')).join(', ')}` };
}

function throwIfProblems(issues: ConfigIssue[]): void {
  if (issues.length > 0) throw new ConfigError(undefined, issues);
}

/**
 * What Kubernetes injects for a Service named `preemptd` (or `preemptd-<anything>`) in the
 * pod's namespace: `PREEMPTD_SERVICE_HOST`, `PREEMPTD_SERVICE_PORT[_<name>]`, `PREEMPTD_PORT`,
 * `PREEMPTD_PORT_9464_TCP[_PROTO|_PORT|_ADDR]`. No setting has such a name.
 */
const SERVICE_LINK = /^PREEMPTD_(?:[A-Z0-9_]+_)?(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT(?:_\d+_(?:TCP|UDP|SCTP)(?:_PROTO|_PORT|_ADDR)?)?)$/;

const KNOWN_ENV = [...SETTING_BY_ENV.keys(), ...NON_SETTING_ENV];

/**
 * The PREEMPTD_* settings in `env`; `issues` (steps, which cannot be set so) stop the load,
 * `warnings` name the variables that are no setting: a user's own `PREEMPTD_SLACK_URL` or a
 * typo must not stop the agent. Kubernetes service links are left alone.
 */
export function envOverrides(env: NodeJS.ProcessEnv): { overrides: ConfigOverride[]; issues: ConfigIssue[]; warnings: ConfigIssue[] } {
  const overrides: ConfigOverride[] = [];
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || text === undefined || (NON_SETTING_ENV as readonly string[]).includes(name) || SERVICE_LINK.test(name)) continue;
    const path = SETTING_BY_ENV.get(name);
    if (path) overrides.push({ path, value: parseValue(text), origin: name });
    else if (name === `${ENV_PREFIX}STEPS` || name.startsWith(`${ENV_PREFIX}STEPS__`)) issues.push({ path: name, message: STEPS_MESSAGE });
    else {
      const suggestion = closest(name, KNOWN_ENV);
      const hint = suggestion ? `did you mean ${suggestion}?` : `the settings are ${KNOWN_ENV.join(', ')}`;
      warnings.push({ path: name, message: `not a setting, ignored; ${hint}` });
    }
  }
  return { overrides, issues, warnings };
}

/**
 * `PREEMPTD_POLL_INTERVAL=2s`, `PREEMPTD_AWS__ALLOW_IMDS_V1=true`: the SCREAMING_SNAKE of
 * each key, sections joined by a double underscore. Throws ConfigError for PREEMPTD_STEPS*;
 * other variables that name no setting are skipped (envOverrides reports them).
 */
export function overridesFromEnv(env: NodeJS.ProcessEnv): ConfigOverride[] {
  const { overrides, issues } = envOverrides(env);
  throwIfProblems(issues);
  return overrides;
}

function kebabCase(flag: string): string {
  return flag.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/**
 * `--set aws.allowImdsV1=true` entries and the dedicated flags (`{ pollInterval: '2s' }`
 * or `{ 'poll-interval': '2s' }`; undefined values are skipped). Throws ConfigError naming
 * the flag when one does not name a setting.
 */
export function overridesFromFlags(setList: readonly string[], dedicated: Record<string, unknown> = {}): ConfigOverride[] {
  const byPath = new Map<string, ConfigOverride>();
  const issues: ConfigIssue[] = [];
  for (const [flag, value] of Object.entries(dedicated)) {
    if (value === undefined) continue;
    const path = DEDICATED_FLAGS[kebabCase(flag)];
    const origin = `--${kebabCase(flag)}`;
    if (!path) {
      issues.push({ path: origin, message: `not a setting flag: expected one of ${Object.keys(DEDICATED_FLAGS).map((name) => `--${name}`).join(', ')} or --set key=value` });
      continue;
    }
    byPath.set(path.join('.'), { path, value: typeof value === 'string' ? parseValue(value) : value, origin });
  }
  for (const entry of setList) {
    const equals = entry.indexOf('=');
    if (equals <= 0) {
      issues.push({ path: `--set ${entry}`, message: 'expected key=value, such as --set aws.allowImdsV1=true' });
      continue;
    }
    const key = entry.slice(0, equals).trim();
    const override = { path: key.split('.'), value: parseValue(entry.slice(equals + 1)), origin: `--set ${key}` };
    const problem = overrideProblem(override);
    if (problem) issues.push(problem);
    else byPath.set(key, override);
  }
  throwIfProblems(issues);
  return [...byPath.values()];
}

/** The mapping at `path` inside `root`, created when absent; undefined when something else is there. */
function sectionOf(root: Record<string, unknown>, path: readonly string[]): Record<string, unknown> | undefined {
  let node = root;
  for (const key of path) {
    const child = node[key] ?? {};
    if (typeof child !== 'object' || Array.isArray(child)) return undefined;
    node[key] = child;
    node = child as Record<string, unknown>;
  }
  return node;
}

/**
 * Returns a copy of `raw` with the overrides applied in order (later wins), the origin of
 * each overridden field path (for messages), and the overrides that name no setting.
 */
export function applyOverrides(
  raw: Record<string, unknown>,
  overrides: readonly ConfigOverride[],
): { value: Record<string, unknown>; origins: Map<string, string>; issues: ConfigIssue[] } {
  const value = structuredClone(raw);
  const origins = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  for (const override of overrides) {
    const problem = overrideProblem(override);
    if (problem) {
      issues.push(problem);
      continue;
    }
    const parent = sectionOf(value, override.path.slice(0, -1));
    // A section that is not a mapping is reported by validation; the override cannot land.
    if (!parent) continue;
    parent[override.path.at(-1)!] = override.value;
    origins.set(override.path.join('.'), override.origin);
  }
  return { value, origins, issues };
}
