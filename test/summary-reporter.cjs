// Prints the plain closing line CI reads ("N passed, N failed"), after jest's own summary,
// and, when anything failed, the run's test seed (test/helpers/seed.ts) to reproduce it.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests > 0 || results.numFailedTestSuites > 0 || results.numRuntimeErrorTestSuites > 0;
    const seed = process.env.TEST_RUN_SEED; // fixed by test/helpers/seed.ts
    const rerun = failed && seed ? `seed: ${seed} (rerun with PREEMPTD_TEST_SEED=${seed})\n` : '';
    process.stdout.write(`\n${results.numPassedTests} passed, ${results.numFailedTests} failed\n${rerun}`);
  }
}
module.exports = SummaryReporter;
