import { formatDuration, parseDuration } from '../../src/lib/duration.js';

describe('formatDuration', () => {
  test.each([
    [250, '250ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [59_940, '59.9s'],
    [59_960, '1m0s'],
    [90_000, '1m30s'],
    [119_995, '2m0s'],
    [3_599_600, '60m0s'],
  ])('%i ms prints as %s, never a part that rounds up to 60', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test('what it prints parses back to the same duration, to the unit it shows', () => {
    for (const ms of [1500, 12_300, 90_000, 119_995]) {
      const back = parseDuration(formatDuration(ms).replace(/^(\d+)m(\d+)s$/, (_all, m: string, s: string) => `${Number(m) * 60 + Number(s)}s`))!;
      expect(Math.abs(back - ms)).toBeLessThanOrEqual(500);
    }
  });
});
