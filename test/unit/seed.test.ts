import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { jest } from '@jest/globals';
import fc from 'fast-check';
import { parseSeed, RUN_SEED_ENV, SEED_ENV, seededRandom, TEST_SEED, testBytes, testRandom } from '../helpers/seed.js';

/** The seeded randomness of the tests (test/helpers/seed.ts): one seed reproduces a run's data. */

describe('seeded test data', () => {
  test('the same seed and label give the same bytes and numbers; another seed or label gives others', () => {
    const draw = (seed: number, label: string) => {
      const random = seededRandom(seed, label);
      return { bytes: random.bytes(4096).toString('hex'), floats: [random.float(), random.float()], int: random.int(1, 6) };
    };
    const first = draw(42, 'a test');
    expect(draw(42, 'a test')).toEqual(first);
    expect(draw(43, 'a test').bytes).not.toBe(first.bytes);
    expect(draw(42, 'another test').bytes).not.toBe(first.bytes);
    for (const value of first.floats) expect(value >= 0 && value < 1).toBe(true);
    expect(first.int >= 1 && first.int <= 6).toBe(true);
  });

  test('successive draws from one stream differ (two files of test data never come out identical)', () => {
    const random = seededRandom(7, 'files');
    expect(random.bytes(1024).equals(random.bytes(1024))).toBe(false);
  });

  test('int covers its whole range, both ends included', () => {
    const random = seededRandom(1, 'dice');
    const seen = new Set(Array.from({ length: 600 }, () => random.int(1, 6)));
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test("a test's stream is its own, derived from the run's seed and the test's name", () => {
    const expected = seededRandom(TEST_SEED, expect.getState().currentTestName!).bytes(64);
    expect(testBytes(64).equals(expected)).toBe(true);
    expect(testRandom().bytes(64).equals(expected)).toBe(false);
  });
});

describe("the run's seed", () => {
  test('is fixed for every worker by jest, and seeds fast-check', () => {
    expect(process.env[RUN_SEED_ENV]).toBe(String(TEST_SEED));
    expect(fc.readConfigureGlobal().seed).toBe(TEST_SEED);
    const arbitrary = fc.array(fc.integer(), { minLength: 5 });
    expect(fc.sample(arbitrary, 3)).toEqual(fc.sample(arbitrary, { seed: TEST_SEED, numRuns: 3 }));
  });

  test('stays out of the env of child processes: an agent refuses a PREEMPTD_* variable that names no setting', () => {
    expect(process.env[SEED_ENV]).toBeUndefined();
    const child = spawnSync(process.execPath, ['-p', "Object.keys(process.env).filter((name) => name.startsWith('PREEMPTD_')).join()"], { encoding: 'utf8' });
    expect(child.stdout.trim()).toBe('');
  });

  test('is read from the env text, picked when there is none, and refused with the expected form when malformed', () => {
    expect(parseSeed('123')).toBe(123);
    expect(parseSeed(' 0 ')).toBe(0);
    expect(parseSeed(undefined, () => 99)).toBe(99);
    expect(parseSeed('', () => 98)).toBe(98);
    const picked = parseSeed(undefined);
    expect(Number.isSafeInteger(picked) && picked >= 0 && picked < 2 ** 31).toBe(true);
    for (const bad of ['x', '1.5', '-1', String(2 ** 32), '0x']) {
      expect(() => parseSeed(bad)).toThrow(`PREEMPTD_TEST_SEED must be a whole number from 0 to 4294967295, got "${bad}"`);
    }
  });

  test('is printed by the summary reporter when a test failed, with how to rerun, and not when all passed', () => {
    const SummaryReporter = createRequire(import.meta.url)('../summary-reporter.cjs') as new () => {
      onRunComplete(contexts: unknown, results: Record<string, number>): void;
    };
    const printed = (results: Record<string, number>) => {
      const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
      try {
        new SummaryReporter().onRunComplete(new Set(), { numFailedTestSuites: 0, numRuntimeErrorTestSuites: 0, ...results });
        return write.mock.calls.map(([chunk]) => String(chunk)).join('');
      } finally {
        write.mockRestore();
      }
    };
    expect(printed({ numPassedTests: 3, numFailedTests: 1, numFailedTestSuites: 1 })).toBe(
      `\n3 passed, 1 failed\nseed: ${TEST_SEED} (rerun with PREEMPTD_TEST_SEED=${TEST_SEED})\n`,
    );
    expect(printed({ numPassedTests: 2, numFailedTests: 0, numRuntimeErrorTestSuites: 1 })).toContain(`seed: ${TEST_SEED}`);
    expect(printed({ numPassedTests: 4, numFailedTests: 0 })).toBe('\n4 passed, 0 failed\n');
  });
});
