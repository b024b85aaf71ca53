import { resolve } from 'node:path';
import type { ConfigIssue } from '../lib/errors.js';
import { registerSecret } from '../lib/log.js';
import { readRegularFileSync, type Refusal } from '../lib/read-regular-file.js';
import { formatPath, readFailure, type IssuePath } from './issues.js';

/** `$${` is a literal `${`; `${...}` is a reference. */
const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
export const ENV_REFERENCE = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;
export const FILE_REFERENCE = /^file:(.+)$/;

export interface ReferenceOptions {
  env: NodeJS.ProcessEnv;
  /** Relative `${file:...}` paths are read from here (the config file's folder). */
  baseDir: string;
}

export interface ResolvedReferences {
  value: unknown;
  issues: ConfigIssue[];
  /** Field paths whose references could not be resolved (their other issues are noise). */
  failedPaths: string[];
}

/** A secret or a URL fits many times over; /dev/zero or a log file never should be read whole. */
export const MAX_REFERENCE_BYTES = 1024 * 1024;

/**
 * Reads a regular file of at most MAX_REFERENCE_BYTES, without blocking on a FIFO or a device
 * (lib/read-regular-file.ts), so neither the load nor a SIGHUP reload can hang or fill memory.
 */
function readReference(file: string): { value: string } | { problem: string } {
  try {
    // A file written by `echo` or an editor ends with a newline that is not part of the secret.
    return { value: readRegularFileSync(file, MAX_REFERENCE_BYTES).replace(/\r?\n$/, '') };
  } catch (error) {
    const { code, fileType } = error as Refusal;
    if (code === 'EFTYPE') return { problem: `${fileType}; expected a regular file holding the value` };
    if (code === 'EFBIG') return { problem: 'larger than 1 MiB, the most a reference reads; expected a small file holding the value' };
    throw error;
  }
}

function resolveOne(reference: string, options: ReferenceOptions): { value: string } | { problem: string } {
  const env = ENV_REFERENCE.exec(reference);
  if (env) {
    const name = env[1]!;
    const value = options.env[name];
    return value === undefined ? { problem: `\${${reference}}: environment variable ${name} is not set` } : { value };
  }
  const file = FILE_REFERENCE.exec(reference);
  if (file) {
    const path = resolve(options.baseDir, file[1]!.trim());
    let outcome: { value: string } | { problem: string };
    try {
      outcome = readReference(path);
    } catch (error) {
      outcome = { problem: readFailure(error) };
    }
    return 'problem' in outcome ? { problem: `\${${reference}}: cannot read ${path}: ${outcome.problem}` } : outcome;
  }
  return { problem: `got \${${reference}}: expected \${env:NAME} or \${file:/path} (write $\${ for a literal \${)` };
}

function resolveString(text: string, path: IssuePath, options: ReferenceOptions, result: ResolvedReferences): string {
  let failed = false;
  const resolved = text.replace(REFERENCE, (match, reference: string | undefined) => {
    if (reference === undefined) return '${';
    const outcome = resolveOne(reference, options);
    if ('problem' in outcome) {
      failed = true;
      result.issues.push({ path: formatPath(path), message: outcome.problem });
      return match;
    }
    registerSecret(outcome.value);
    return outcome.value;
  });
  if (failed) result.failedPaths.push(formatPath(path));
  return resolved;
}

/**
 * Replaces `${env:NAME}` and `${file:/path}` in every string value (whole or embedded).
 * Every resolved value is registered as a secret so no log line can carry it, and no
 * message ever shows it.
 */
export function resolveReferences(raw: unknown, options: ReferenceOptions): ResolvedReferences {
  const result: ResolvedReferences = { value: undefined, issues: [], failedPaths: [] };
  const walk = (node: unknown, path: PropertyKey[]): unknown => {
    if (typeof node === 'string') return resolveString(node, path, options, result);
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...path, index]));
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, walk(value, [...path, key])]));
    }
    return node;
  };
  result.value = walk(raw, []);
  return result;
}
