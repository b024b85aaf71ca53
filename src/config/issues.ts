import type { z } from 'zod';
import type { ConfigIssue } from '../lib/errors.js';
import { REDACT_PATHS } from '../lib/log.js';
import { showValue } from '../lib/format.js';

export type IssuePath = readonly PropertyKey[];

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['steps', 1, 'signal', 'signal']` becomes `steps[1].signal.signal`. */
export function formatPath(path: IssuePath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else {
      const key = String(segment);
      if (IDENTIFIER.test(key)) text += text ? `.${key}` : key;
      else text += `[${JSON.stringify(key)}]`;
    }
  }
  return text;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
};

type RawIssue = z.core.$ZodRawIssue;

function bound(issue: RawIssue & { minimum?: unknown; maximum?: unknown; inclusive?: boolean; origin?: string }): string {
  const limit = issue.code === 'too_small' ? issue.minimum : issue.maximum;
  const countable = issue.origin === 'array' || issue.origin === 'set';
  const what = countable ? ' entries' : issue.origin === 'string' ? ' characters' : '';
  if (issue.code === 'too_small') {
    if (countable && limit === 1) return 'expected at least one entry';
    if (issue.origin === 'string' && limit === 1) return 'expected a non-empty string';
    return issue.inclusive === false ? `expected more than ${String(limit)}${what}` : `expected at least ${String(limit)}${what}`;
  }
  return issue.inclusive === false ? `expected less than ${String(limit)}${what}` : `expected at most ${String(limit)}${what}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known key a typo most likely meant, if one is close enough. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}

/** `unknown key; did you mean webhook? (expected ...)`; the hint only when `key` is a near miss. */
export function unknownKeyMessage(key: string | undefined, known: readonly string[], expected: string): string {
  const suggestion = key === undefined ? undefined : closest(key, known);
  return `unknown key${suggestion ? `; did you mean ${suggestion}?` : ''} (${expected})`;
}

function isTypeMismatch(branch: readonly z.core.$ZodIssue[]): boolean {
  return branch.length === 1 && branch[0]!.code === 'invalid_type' && branch[0]!.path.length === 0;
}

/**
 * What a union expected: the types when the value fit none (`a string or a whole number`),
 * else the complaint of the one form whose type it had (`expected a non-empty string`).
 */
function unionExpectation(branches: readonly (readonly z.core.$ZodIssue[])[], input: unknown): string {
  const near = branches.filter((branch) => !isTypeMismatch(branch));
  if (near.length === 0) {
    const types = branches.map((branch) => {
      const expected = String((branch[0] as { expected?: unknown }).expected);
      return TYPE_NAMES[expected] ?? expected;
    });
    return `expected ${[...new Set(types)].join(' or ')}`;
  }
  const [only] = near;
  if (near.length === 1 && only!.length === 1 && only![0]!.path.length === 0) {
    const described = describeIssue({ ...only![0]!, input } as RawIssue);
    if (described) return described.replace(/^(got .*?|missing): /, '');
  }
  return 'does not match any accepted form';
}

/**
 * Per-parse zod error map: every built-in issue says what it got and what was expected.
 * Schemas that carry their own message (fields.ts helpers, step types) keep it.
 */
export function describeIssue(issue: RawIssue): string | undefined {
  const got = issue.input === undefined ? 'missing' : `got ${showValue(issue.input)}`;
  switch (issue.code) {
    case 'invalid_type': {
      const expected = TYPE_NAMES[String(issue.expected)] ?? String(issue.expected);
      return `${got}: expected ${expected}`;
    }
    case 'invalid_value':
      return `${got}: expected ${issue.values.length === 1 ? showValue(issue.values[0]) : `one of ${issue.values.map((value) => String(value)).join(', ')}`}`;
    case 'too_small':
    case 'too_big':
      return `${got}: ${bound(issue)}`;
    case 'invalid_format':
      return `${got}: expected ${issue.format === 'regex' ? 'a value matching ' + String(issue.pattern) : `a valid ${issue.format}`}`;
    case 'unrecognized_keys': {
      const shape = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
      if (!shape) return 'unknown key';
      const known = Object.keys(shape);
      return unknownKeyMessage(issue.keys.length === 1 ? issue.keys[0]! : undefined, known, `expected one of ${known.join(', ')}`);
    }
    case 'invalid_union':
      return `${got}: ${unionExpectation(issue.errors, issue.input)}`;
    default:
      return undefined;
  }
}

/** Last keys of REDACT_PATHS (`url`, `token`, `authorization`...): values that are credentials by nature. */
const SECRET_KEYS = new Set(REDACT_PATHS.map((path) => /([A-Za-z0-9_-]+)"?\]?$/.exec(path)?.[1]?.toLowerCase()));

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** A bad webhook URL or token is still a credential: its message must not repeat it. */
function withoutCredential(message: string, path: readonly PropertyKey[], input: unknown): string {
  const key = path.at(-1);
  if (typeof key !== 'string' || !SECRET_KEYS.has(key.toLowerCase())) return message;
  const value = valueAt(input, path);
  if (typeof value !== 'string' || value.length === 0) return message;
  return message.split(showValue(value)).join('(value hidden)');
}

/**
 * Turns zod issues into config issues under `prefix`; unknown keys become one issue each.
 * `input` is what was parsed, so credentials in it can be kept out of the messages.
 */
export function zodIssues(error: z.ZodError, prefix: IssuePath = [], input?: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) issues.push({ path: formatPath([...path, key]), message: issue.message });
    } else {
      issues.push({ path: formatPath(path), message: withoutCredential(issue.message, issue.path, input) });
    }
  }
  return issues;
}

/** Why a file could not be read, in a few words (never its content). */
export function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? 'unreadable';
}
