import { createCipheriv, createHash, randomInt } from 'node:crypto';
import fc from 'fast-check';

/**
 * One seed for every random thing a test makes: fast-check's properties and samples, and the
 * bytes and numbers of test data (testBytes, testRandom). jest runs this file as its
 * globalSetup (fixing the seed in the env, which the workers inherit and the summary reporter
 * prints on a failure) and before every test file (setupFilesAfterEnv: fast-check's global
 * seed). Rerun a failure with PREEMPTD_TEST_SEED=<seed>. Unique temp names stay random.
 */
export const SEED_ENV = 'PREEMPTD_TEST_SEED';
/**
 * Where the run's seed is kept once fixed: not under PREEMPTD_, because the agents that tests
 * start inherit the env and refuse a PREEMPTD_* variable that names no setting.
 */
export const RUN_SEED_ENV = 'TEST_RUN_SEED';

/** The seed from the env's text, or a new one when there is none. */
export function parseSeed(text: string | undefined, pick: () => number = () => randomInt(2 ** 31)): number {
  if (text === undefined || text.trim() === '') return pick();
  const seed = Number(text.trim());
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`${SEED_ENV} must be a whole number from 0 to ${2 ** 32 - 1}, got ${JSON.stringify(text)}`);
  }
  return seed;
}

/** Reads the run's seed, picking one if none is set, and leaves it in the env for whoever runs next. */
export default function fixRunSeed(): number {
  const seed = parseSeed(process.env[RUN_SEED_ENV] ?? process.env[SEED_ENV]);
  process.env[RUN_SEED_ENV] = String(seed);
  delete process.env[SEED_ENV];
  return seed;
}

export const TEST_SEED = fixRunSeed();
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: TEST_SEED });

/** A deterministic stream of bytes and numbers. */
export interface SeededRandom {
  bytes(size: number): Buffer;
  /** In [0, 1), like Math.random. */
  float(): number;
  /** A whole number from min to max, both included. */
  int(min: number, max: number): number;
}

/**
 * The stream named `label` under `seed`: AES-256-CTR keyed by both, so the same pair always
 * gives the same bytes, any other pair unrelated ones, and megabytes cost milliseconds.
 */
export function seededRandom(seed: number, label: string): SeededRandom {
  const key = createHash('sha256').update(`${seed}\0${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const bytes = (size: number) => cipher.update(Buffer.alloc(size));
  const float = () => bytes(6).readUIntBE(0, 6) / 2 ** 48;
  return { bytes, float, int: (min, max) => min + Math.floor(float() * (max - min + 1)) };
}

const streams = new Map<string, SeededRandom>();

/**
 * The current test's stream (by its full name), so a test's data does not depend on which
 * other tests ran before it; outside a test, one stream for the file.
 */
export function testRandom(): SeededRandom {
  const label = expect.getState().currentTestName ?? '(outside a test)';
  let stream = streams.get(label);
  if (!stream) streams.set(label, (stream = seededRandom(TEST_SEED, label)));
  return stream;
}

/** `size` bytes of seeded test data (in place of crypto.randomBytes). */
export function testBytes(size: number): Buffer {
  return testRandom().bytes(size);
}
