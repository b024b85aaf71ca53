import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { regex } from '../../config/fields.js';
import { showValue } from '../../lib/format.js';
import { scrubSecrets } from '../../lib/log.js';
import type { Pattern } from '../../lib/pattern.js';
import { describeStatuses, statusList, statusMatches, type StatusRange } from './status-range.js';

/** What a polled response must show for an `until:` to hold; exactly one per poll. */
export type UntilCondition =
  | { kind: 'status'; statuses: StatusRange[] }
  | { kind: 'bodyEquals'; text: string }
  | { kind: 'bodyContains'; text: string }
  | { kind: 'bodyMatches'; pattern: Pattern }
  | { kind: 'json'; path: string; compare: JsonComparison };

export type JsonComparison =
  | { op: 'equals' | 'notEquals'; value: unknown }
  | { op: 'lessThan' | 'greaterThan'; value: number };

export interface PolledResponse {
  status: number;
  body: string;
}

export interface ConditionCheck {
  holds: boolean;
  /** What the response showed, for progress and the failure message (`in_flight = 3`). */
  seen: string;
}

export const CONDITION_KEYS = ['status', 'bodyEquals', 'bodyContains', 'bodyMatches', 'json'] as const;

const JSON_OPS = ['equals', 'notEquals', 'lessThan', 'greaterThan'] as const;

export const jsonConditionSchema = z
  .strictObject({
    path: z.string().trim().min(1, 'expected a dot path such as in_flight or stats.queue.length'),
    equals: z.unknown().optional(),
    notEquals: z.unknown().optional(),
    lessThan: z.number({ message: 'expected a number' }).optional(),
    greaterThan: z.number({ message: 'expected a number' }).optional(),
  })
  .transform((raw, ctx) => {
    const given = JSON_OPS.filter((op) => op in raw && raw[op] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `expected exactly one comparison of ${JSON_OPS.join(', ')}` });
      return z.NEVER;
    }
    const op = given[0]!;
    return { path: raw.path, compare: { op, value: raw[op] } as JsonComparison };
  });

export const conditionFields = {
  status: statusList().optional(),
  bodyEquals: z.string().optional(),
  bodyContains: z.string().optional(),
  bodyMatches: regex().optional(),
  json: jsonConditionSchema.optional(),
};

/** `a.b.0.c`: object keys, and array indexes where the value is a list. */
export function valueAt(document: unknown, path: string): unknown {
  let value = document;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function compare(actual: unknown, comparison: JsonComparison): boolean {
  switch (comparison.op) {
    case 'equals':
      return isDeepStrictEqual(actual, comparison.value);
    case 'notEquals':
      return !isDeepStrictEqual(actual, comparison.value);
    case 'lessThan':
      return typeof actual === 'number' && actual < comparison.value;
    case 'greaterThan':
      return typeof actual === 'number' && actual > comparison.value;
  }
}

export function checkCondition(condition: UntilCondition, response: PolledResponse): ConditionCheck {
  // Scrubbed before showValue cuts it: a secret cut in half is no longer recognised later.
  const body = showValue(scrubSecrets(response.body));
  switch (condition.kind) {
    case 'status':
      return { holds: statusMatches(condition.statuses, response.status), seen: `HTTP ${response.status}` };
    case 'bodyEquals':
      return { holds: response.body === condition.text, seen: `body ${body}` };
    case 'bodyContains':
      return { holds: response.body.includes(condition.text), seen: `body ${body}` };
    case 'bodyMatches':
      return { holds: condition.pattern.test(response.body), seen: `body ${body}` };
    case 'json': {
      let document: unknown;
      try {
        document = JSON.parse(response.body);
      } catch {
        return { holds: false, seen: `HTTP ${response.status} with a body that is not JSON: ${body}` };
      }
      const actual = valueAt(document, condition.path);
      const shown = actual === undefined ? 'missing' : showValue(actual);
      return { holds: compare(actual, condition.compare), seen: `${condition.path} = ${shown}` };
    }
  }
}

export function describeCondition(condition: UntilCondition): string {
  switch (condition.kind) {
    case 'status':
      return `status is ${describeStatuses(condition.statuses)}`;
    case 'bodyEquals':
      return `body equals ${showValue(condition.text)}`;
    case 'bodyContains':
      return `body contains ${showValue(condition.text)}`;
    case 'bodyMatches':
      return `body matches /${condition.pattern.source}/`;
    case 'json': {
      const words = { equals: '=', notEquals: '!=', lessThan: '<', greaterThan: '>' } as const;
      return `${condition.path} ${words[condition.compare.op]} ${showValue(condition.compare.value)}`;
    }
  }
}
