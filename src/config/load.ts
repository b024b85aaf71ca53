import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import YAML from 'yaml';
import type { ConfigIssue } from '../lib/errors.js';
import { readFailure } from './issues.js';
import { applyOverrides, envOverrides, type ConfigOverride } from './overrides.js';
import { resolveReferences } from './refs.js';
import { configError, describeShape, EXPECTED_TOP_LEVEL, isMapping, validateConfig, type CompileOptions } from './schema.js';
import type { Config } from './types.js';

export { compileConfig, type CompileOptions } from './schema.js';
export { overridesFromEnv, overridesFromFlags, type ConfigOverride } from './overrides.js';

export interface LoadOptions extends CompileOptions {
  /** Source of `${env:NAME}` references and PREEMPTD_* overrides; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Flag overrides (overridesFromFlags), applied after the environment's. */
  overrides?: readonly ConfigOverride[];
  /** Told of each problem that does not stop the load (a PREEMPTD_* variable that is no setting). */
  onWarning?: (warning: ConfigIssue) => void;
}

/** Parses YAML (JSON is YAML) into the top-level mapping; syntax errors carry line and column. */
export function parseConfigText(text: string, file?: string): Record<string, unknown> {
  const name = file ?? '<config>';
  const document = YAML.parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw configError(
      file,
      document.errors.map((error) => {
        const position = error.linePos?.[0];
        const where = position ? `${name}:${position.line}:${position.col}` : name;
        // yaml appends " at line L, column C:" and a code frame; the position is already in front.
        const message = error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
        return { path: '', message: `${where}: ${message}` };
      }),
    );
  }
  if (document.contents === null) {
    throw configError(file, [{ path: '', message: `${name} is empty: ${EXPECTED_TOP_LEVEL}` }]);
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw configError(file, [{ path: '', message: `${name}: ${(error as Error).message}` }]);
  }
  if (!isMapping(value)) {
    throw configError(file, [{ path: '', message: `${name}: got ${describeShape(value)} at the top level: ${EXPECTED_TOP_LEVEL}` }]);
  }
  return value;
}

async function readConfigFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw configError(file, [{ path: '', message: `cannot read ${file}: ${readFailure(error)}; expected a YAML or JSON config file` }]);
  }
}

function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}

/**
 * Reads the file (none: defaults and overrides only), applies PREEMPTD_* env overrides,
 * then flag overrides, resolves `${env:..}`/`${file:..}` references, validates and
 * compiles. Throws one ConfigError listing every issue.
 */
export async function loadConfig(options: LoadOptions): Promise<Config> {
  const { file } = options;
  const env = options.env ?? process.env;
  const raw = file === undefined ? {} : parseConfigText(await readConfigFile(file), file);
  const fromEnv = envOverrides(env);
  for (const warning of fromEnv.warnings) options.onWarning?.(warning);
  const overridden = applyOverrides(raw, [...fromEnv.overrides, ...(options.overrides ?? [])]);
  const references = resolveReferences(overridden.value, { env, baseDir: file === undefined ? process.cwd() : dirname(file) });
  const { config, issues } = validateConfig(references.value, options.stepTypes);
  const validation = issues
    .filter((issue) => !references.failedPaths.some((failed) => isUnder(issue.path, failed)))
    .map((issue) => {
      const origin = overridden.origins.get(issue.path);
      return origin ? { path: issue.path, message: `${issue.message} (from ${origin})` } : issue;
    });
  const all = [...fromEnv.issues, ...overridden.issues, ...references.issues, ...validation];
  if (all.length > 0 || !config) throw configError(file, all);
  return { file, ...config };
}
