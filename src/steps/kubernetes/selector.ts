/**
 * Equality-based label selectors as kubectl takes them (`app=web,tier!=cache,critical,!canary`),
 * parsed when the config loads so a typo fails there, not in the middle of a drain.
 */
export interface LabelRequirement {
  key: string;
  /** `=`/`==`: equals; `!=`: differs or absent; `exists`/`absent`: a bare `key` or `!key`. */
  op: 'equals' | 'differs' | 'exists' | 'absent';
  value: string;
}

export interface LabelSelector {
  /** As written, for messages and dry runs. */
  text: string;
  requirements: LabelRequirement[];
}

const KEY = '[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?';
const VALUE = '([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?';
const REQUIREMENT = new RegExp(`^(?:(!)?(${KEY})|(${KEY})\\s*(==|=|!=)\\s*(${VALUE}))$`);

/** Parses `text`, or says which part is not a requirement. */
export function parseLabelSelector(text: string): LabelSelector | { error: string } {
  const requirements: LabelRequirement[] = [];
  for (const part of text.split(',').map((piece) => piece.trim())) {
    const match = REQUIREMENT.exec(part);
    if (!match) return { error: `"${part}" in the label selector "${text}" is not key, !key, key=value or key!=value` };
    if (match[2] !== undefined) requirements.push({ key: match[2], op: match[1] ? 'absent' : 'exists', value: '' });
    else requirements.push({ key: match[4]!, op: match[6] === '!=' ? 'differs' : 'equals', value: match[7] ?? '' });
  }
  return { text, requirements };
}

export function matchesSelector(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  return selector.requirements.every(({ key, op, value }) => {
    const actual = labels?.[key];
    if (op === 'exists') return actual !== undefined;
    if (op === 'absent') return actual === undefined;
    return op === 'equals' ? actual === value : actual !== value;
  });
}
