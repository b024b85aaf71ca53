/** Label and field selectors as the API server parses them from `?labelSelector=` and `?fieldSelector=`. */

type Requirement = (values: Record<string, string | undefined>) => boolean;

/** Splits on commas outside parentheses (`a in (x,y),b` is two requirements). */
function requirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else current += char;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}

function parseRequirement(text: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(text);
  if (set) {
    const [, key, op, list] = set as unknown as [string, string, string, string];
    const values = list.split(',').map((value) => value.trim());
    return op === 'in' ? (labels) => values.includes(labels[key] ?? '\0') : (labels) => !values.includes(labels[key] ?? '\0');
  }
  const comparison = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(text);
  if (comparison) {
    const [, key, op, value] = comparison as unknown as [string, string, string, string];
    return op === '!=' ? (labels) => labels[key] !== value : (labels) => labels[key] === value;
  }
  if (text.startsWith('!')) return (labels) => labels[text.slice(1)] === undefined;
  if (/^[\w./-]+$/.test(text)) return (labels) => labels[text] !== undefined;
  throw new Error(`unable to parse requirement: ${text}`);
}

/** A predicate over a label map (or field values); throws on a selector the server would reject. */
export function parseSelector(selector: string | undefined): Requirement {
  const parsed = requirements(selector ?? '').map(parseRequirement);
  return (values) => parsed.every((requirement) => requirement(values));
}

/** Whether `selector` (a PodDisruptionBudget's, a matchLabels/matchExpressions object) selects `labels`. */
export function matchesLabelSelector(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> } | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return false;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const byExpressions = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    switch (operator) {
      case 'In': return values.includes(labels[key] ?? '\0');
      case 'NotIn': return !values.includes(labels[key] ?? '\0');
      case 'Exists': return key in labels;
      case 'DoesNotExist': return !(key in labels);
      default: throw new Error(`unknown selector operator ${operator}`);
    }
  });
  return byLabels && byExpressions;
}
