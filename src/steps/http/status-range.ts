import { z } from 'zod';
import { showValue } from '../../lib/format.js';

/** Accepted HTTP statuses, inclusive; `label` is how the user wrote it. */
export interface StatusRange {
  min: number;
  max: number;
  label: string;
}

const EXPECTED = 'expected a status such as 200, or a class such as 2xx';

function parseStatus(value: number | string): StatusRange | undefined {
  const text = String(value).trim().toLowerCase();
  const exact = /^[1-5]\d\d$/.exec(text);
  if (exact) return { min: Number(text), max: Number(text), label: text };
  const range = /^([1-5])xx$/.exec(text);
  if (range) return { min: Number(range[1]) * 100, max: Number(range[1]) * 100 + 99, label: text };
  return undefined;
}

/** One status or a list: `200`, `2xx`, `[200, 404]`, `["2xx", 409]`. */
export function statusList() {
  const one = z.union([z.number(), z.string()]);
  return z.union([one, z.array(one).min(1)]).transform((value, ctx) => {
    const items = Array.isArray(value) ? value : [value];
    const ranges: StatusRange[] = [];
    for (const item of items) {
      const range = parseStatus(item);
      if (range) ranges.push(range);
      else ctx.addIssue({ code: 'custom', message: `got ${showValue(item)}: ${EXPECTED}` });
    }
    return ranges;
  });
}

export const SUCCESS: StatusRange[] = [{ min: 200, max: 299, label: '2xx' }];

export function statusMatches(ranges: readonly StatusRange[], status: number): boolean {
  return ranges.some((range) => status >= range.min && status <= range.max);
}

export function describeStatuses(ranges: readonly StatusRange[]): string {
  return ranges.map((range) => range.label).join(' or ');
}
