import { z } from 'zod';
import type { ConfigIssue } from '../lib/errors.js';
import { noticeKind, positiveDuration } from './fields.js';
import { showValue } from '../lib/format.js';
import { describeIssue, formatPath, unknownKeyMessage, zodIssues } from './issues.js';
import type { StepConfig } from './types.js';

/**
 * What the config needs of a step type: the key that selects it and the schema of its
 * options. The caller hands config the registry (steps/registry.ts); config never imports steps.
 */
export interface StepEntryType {
  readonly type: string;
  readonly schema: z.ZodType;
  /** The timeout (ms) a step of this type gets without `timeout:`, given its parsed options. */
  defaultTimeoutMs?(options: unknown): number;
}

/** The timeout of a step whose type names no default of its own. */
export const STEP_DEFAULTS = { timeoutMs: 60_000 } as const;

const STEP_NAME = /^[A-Za-z0-9_.-]+$/;

function stepName() {
  return z
    .string({ error: (issue) => (issue.input === undefined ? 'required: every step needs a name' : undefined) })
    .regex(STEP_NAME, { error: (issue) => `got ${showValue(issue.input)}: expected letters, digits, -, _ or . only` });
}

/** The keys every step entry may have besides its one type key. */
export const commonSchema = z.strictObject({
  name: stepName(),
  after: z.array(stepName()).prefault([]),
  on: z.array(noticeKind()).min(1).optional(),
  timeout: positiveDuration().optional(),
});
const COMMON_KEYS = Object.keys(commonSchema.shape);

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function typeList(stepTypes: readonly StepEntryType[]): string {
  return stepTypes.length > 0 ? stepTypes.map((stepType) => stepType.type).join(', ') : '(none in this build)';
}

/** Validates one entry of `steps:`; returns its compiled form, or undefined when invalid. */
function compileStep(
  entry: unknown,
  index: number,
  stepTypes: readonly StepEntryType[],
  issues: ConfigIssue[],
): StepConfig | undefined {
  const path = ['steps', index];
  const at = formatPath(path);
  const issuesBefore = issues.length;
  if (!isMapping(entry)) {
    issues.push({ path: at, message: `got ${showValue(entry)}: expected a mapping with a name and one step type (${typeList(stepTypes)})` });
    return undefined;
  }
  const common: Record<string, unknown> = {};
  const typeKeys: string[] = [];
  let unknownKeys = 0;
  for (const [key, value] of Object.entries(entry)) {
    if (COMMON_KEYS.includes(key)) common[key] = value;
    else if (stepTypes.some((stepType) => stepType.type === key)) typeKeys.push(key);
    else {
      unknownKeys += 1;
      const known = [...stepTypes.map((stepType) => stepType.type), ...COMMON_KEYS];
      issues.push({
        path: formatPath([...path, key]),
        message: unknownKeyMessage(key, known, `expected a step type (${typeList(stepTypes)}) or one of ${COMMON_KEYS.join(', ')}`),
      });
    }
  }
  const parsed = commonSchema.safeParse(common, { error: describeIssue });
  if (!parsed.success) issues.push(...zodIssues(parsed.error, path, common));

  if (typeKeys.length > 1) {
    issues.push({ path: at, message: `got ${typeKeys.join(' and ')}: a step has exactly one type; split it into ${typeKeys.length} steps` });
  } else if (typeKeys.length === 0 && unknownKeys === 0) {
    issues.push({ path: at, message: `no step type: expected exactly one of ${typeList(stepTypes)}` });
  }
  const [typeKey] = typeKeys;
  const stepType = typeKeys.length === 1 ? stepTypes.find((candidate) => candidate.type === typeKey) : undefined;
  let options: unknown;
  if (stepType) {
    const result = stepType.schema.safeParse(entry[stepType.type], { error: describeIssue });
    if (result.success) options = result.data;
    else issues.push(...zodIssues(result.error, [...path, stepType.type], entry[stepType.type]));
  }
  if (!parsed.success || !stepType || issues.length > issuesBefore) return undefined;
  return {
    name: parsed.data.name,
    type: stepType.type,
    options,
    after: [...new Set(parsed.data.after)],
    on: parsed.data.on ? [...new Set(parsed.data.on)] : null,
    timeoutMs: parsed.data.timeout ?? stepType.defaultTimeoutMs?.(options) ?? STEP_DEFAULTS.timeoutMs,
  };
}

/** Names of each entry that has a usable `name`, by index (for cross-step checks on partly invalid input). */
function entryNames(entries: readonly unknown[]): (string | undefined)[] {
  return entries.map((entry) => (isMapping(entry) && typeof entry.name === 'string' ? entry.name : undefined));
}

function entryAfter(entry: unknown): unknown[] {
  return isMapping(entry) && Array.isArray(entry.after) ? entry.after : [];
}

/** Duplicate names, `after:` naming a missing step or the step itself. */
function checkReferences(entries: readonly unknown[], issues: ConfigIssue[]): void {
  const names = entryNames(entries);
  const firstIndex = new Map<string, number>();
  names.forEach((name, index) => {
    if (name === undefined) return;
    const first = firstIndex.get(name);
    if (first === undefined) firstIndex.set(name, index);
    else issues.push({ path: `steps[${index}].name`, message: `got ${showValue(name)}: steps[${first}] already has this name; step names must be unique` });
  });
  const known = [...firstIndex.keys()].join(', ');
  entries.forEach((entry, index) => {
    entryAfter(entry).forEach((target, position) => {
      if (typeof target !== 'string') return;
      const at = `steps[${index}].after[${position}]`;
      if (target === names[index]) issues.push({ path: at, message: `got ${showValue(target)}: a step cannot run after itself` });
      else if (!firstIndex.has(target)) issues.push({ path: at, message: `got ${showValue(target)}: no step has this name (steps: ${known})` });
    });
  });
}

/** Every cycle in `after:`, each named once as `a -> b -> a`. */
function checkCycles(entries: readonly unknown[], issues: ConfigIssue[]): void {
  const names = entryNames(entries);
  const after = new Map<string, string[]>();
  const indexOf = new Map<string, number>();
  names.forEach((name, index) => {
    if (name === undefined || after.has(name)) return;
    indexOf.set(name, index);
    after.set(name, entryAfter(entries[index]).filter((target): target is string => typeof target === 'string' && target !== name));
  });
  const done = new Set<string>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (name: string): void => {
    const open = stack.indexOf(name);
    if (open >= 0) {
      const cycle = stack.slice(open);
      const key = [...cycle].sort().join('\0');
      if (!reported.has(key)) {
        reported.add(key);
        issues.push({ path: `steps[${indexOf.get(name)}].after`, message: `steps wait for each other in a cycle: ${[...cycle, name].join(' -> ')}` });
      }
      return;
    }
    if (done.has(name) || !after.has(name)) return;
    stack.push(name);
    for (const target of after.get(name)!) visit(target);
    stack.pop();
    done.add(name);
  };
  for (const name of after.keys()) visit(name);
}

/** Validates `steps:` against the step type registry and checks the `after:` graph. */
export function compileSteps(
  entries: readonly unknown[],
  stepTypes: readonly StepEntryType[],
): { steps: StepConfig[]; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const steps = entries.map((entry, index) => compileStep(entry, index, stepTypes, issues));
  checkReferences(entries, issues);
  checkCycles(entries, issues);
  return { steps: steps.filter((step): step is StepConfig => step !== undefined), issues };
}
