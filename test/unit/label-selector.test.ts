import { describe, expect, it } from '@jest/globals';
import { matchesSelector, parseLabelSelector, type LabelSelector } from '../../src/steps/kubernetes/selector.js';

const parse = (text: string): LabelSelector => {
  const parsed = parseLabelSelector(text);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
};

describe('label selectors (equality-based, as kubectl takes them)', () => {
  it('matches =, ==, !=, key and !key, every requirement at once', () => {
    const selector = parse('app=web, tier==front,track!=canary,example.com/critical,!preemptd.io/keep');
    expect(matchesSelector(selector, { app: 'web', tier: 'front', 'example.com/critical': '' })).toBe(true);
    expect(matchesSelector(selector, { app: 'web', tier: 'front', track: 'stable', 'example.com/critical': 'yes' })).toBe(true);
    expect(matchesSelector(selector, { app: 'web', tier: 'front', track: 'canary', 'example.com/critical': '' })).toBe(false);
    expect(matchesSelector(selector, { app: 'web', tier: 'front', 'example.com/critical': '', 'preemptd.io/keep': 'x' })).toBe(false);
    expect(matchesSelector(selector, { app: 'db', tier: 'front', 'example.com/critical': '' })).toBe(false);
    expect(matchesSelector(parse('app='), { app: '' })).toBe(true);
    expect(matchesSelector(parse('app!=web'), undefined)).toBe(true);
  });

  it('names the part that is not a requirement', () => {
    expect(parseLabelSelector('app=web,tier in (a,b)')).toEqual({ error: '"tier in (a" in the label selector "app=web,tier in (a,b)" is not key, !key, key=value or key!=value' });
    expect(parseLabelSelector('')).toEqual({ error: '"" in the label selector "" is not key, !key, key=value or key!=value' });
  });
});
