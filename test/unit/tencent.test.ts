import { parseTencentTime, TENCENT_TERMINATION_TIME } from '../../src/providers/tencent/provider.js';
import { parseTerminationTime } from '../../src/providers/metadata/termination-time.js';
import { tencentTime } from '../../src/simulator/tencent.js';

describe('Tencent termination time', () => {
  test('"2018-08-18 12:05:33" is UTC+8 with no zone: 04:05:33 UTC', () => {
    expect(parseTencentTime('2018-08-18 12:05:33')?.toISOString()).toBe('2018-08-18T04:05:33.000Z');
    // Before 08:00 in China it is still the previous day in UTC.
    expect(parseTencentTime('2018-08-18 03:00:00')?.toISOString()).toBe('2018-08-17T19:00:00.000Z');
  });

  test.each(['2018-02-30 12:00:00', '2018-08-18 24:00:00', '2018-08-18 12:60:00', '2018-08-18 12:05:60', '2018-08-18T12:05:33Z', '2018-08-18 12:05', ' soon'])(
    '%j is not a Tencent time',
    (text) => {
      expect(parseTencentTime(text)).toBeUndefined();
    },
  );

  test('404 and blanks are no notice; a value that is not a time is kept as text without a time', () => {
    expect(parseTerminationTime(TENCENT_TERMINATION_TIME, null)).toBeUndefined();
    expect(parseTerminationTime(TENCENT_TERMINATION_TIME, '\n')).toBeUndefined();
    expect(parseTerminationTime(TENCENT_TERMINATION_TIME, '2018-08-18 12:05:33\n')).toEqual({ text: '2018-08-18 12:05:33', time: new Date('2018-08-18T04:05:33Z') });
    expect(parseTerminationTime(TENCENT_TERMINATION_TIME, 'none')).toEqual({ text: 'none', time: undefined });
  });

  test("the simulator writes what the parser reads: whole seconds, UTC+8", () => {
    const time = new Date('2031-12-31T20:30:45.678Z');
    expect(tencentTime(time)).toBe('2032-01-01 04:30:45');
    expect(parseTencentTime(tencentTime(time))?.toISOString()).toBe('2031-12-31T20:30:45.000Z');
  });
});
