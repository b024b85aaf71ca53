/**
 * Three projects, fastest first: `npx jest --selectProjects unit` runs in seconds.
 * unit: pure code and nock; integration: real loopback servers (simulators, receivers,
 * S3 API) and real child processes in one test process; system: the built CLI (dist/),
 * packaging and whole-agent runs.
 */
const shared = {
  testEnvironment: 'node',
  // One seed for all test randomness, fixed once per run (test/helpers/seed.ts); the summary
  // reporter prints it when something failed.
  globalSetup: '<rootDir>/test/helpers/seed.ts',
  // Gives node:net and node:http back after each file that used nock (see the file); seeds fast-check.
  setupFilesAfterEnv: ['<rootDir>/test/helpers/restore-http.ts', '<rootDir>/test/helpers/seed.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023' } }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

/** @type {import('jest').Config} */
export default {
  projects: ['unit', 'integration', 'system'].map((name) => ({
    ...shared,
    displayName: name,
    roots: [`<rootDir>/test/${name}`],
    testMatch: ['**/*.test.ts'],
  })),
  testTimeout: 30000,
  // Integration tests start real servers and child processes; two cores here.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/summary-reporter.cjs'],
};
