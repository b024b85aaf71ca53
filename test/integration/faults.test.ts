import fc from 'fast-check';
import { backoffDelay, METADATA_BACKOFF } from '../../src/lib/backoff.js';
import { PROVIDER_NAMES } from '../../src/notice/notice.js';
import { runFaultScenario, scenariosFor, type FaultOutcome } from '../helpers/fault-scenario.js';
import { seededRandom, TEST_SEED } from '../helpers/seed.js';

/**
 * The short fault suite: for each cloud, every fault alone, two mixes (cleared before the
 * notice, and left on while it is shown), a flickering notice, a notice that vanishes, and
 * notice times in the past and far ahead. Each scenario has its own agent and simulator and
 * they run side by side. The long version is bench/fault-suite.
 */
/**
 * detectLimitMs only bounds a failure: a passing scenario ends at its first delivery. A mix
 * left on while the notice is shown keeps reads failing and the sources backing off, and
 * npm test runs other suites beside this one on two cores: 15 s was exceeded there once
 * (while AWS's token backoff still stacked on the source's), so the limit is 30 s.
 */
const TIMING = { faultMs: 1200, settleMs: 1000, detectLimitMs: 30_000 };
/** Generous for a few seconds of faults; a flood (a line per failed read) would be hundreds. */
const MAX_LOG_LINES = 40;

function describeOutcome(outcome: FaultOutcome): string {
  const applied = Object.entries(outcome.applied).map(([name, count]) => `${name}×${count}`).join(' ') || 'none';
  const deliveries = outcome.deliveries > 1 ? ` (${outcome.deliveryNotes.join('; ')})` : '';
  return `${outcome.name}: ${outcome.deliveries} deliveries${deliveries}, detected in ${outcome.detectMs ?? '-'} ms, faults applied ${applied}, ${outcome.logLines} log lines`;
}

describe.each(PROVIDER_NAMES)('the agent on %s under metadata faults', (provider) => {
  test('detects the notice after every fault and mix and runs the plan exactly once, without crashing or flooding the log', async () => {
    // Each scenario draws its faults from its own seeded stream: the scenarios run side by side.
    const scenarios = scenariosFor(provider, TIMING).map((scenario) => ({ ...scenario, random: seededRandom(TEST_SEED, `faults ${provider} ${scenario.name}`).float }));
    const outcomes = await Promise.all(scenarios.map(runFaultScenario));
    const report = outcomes.map(describeOutcome).join('\n');
    for (const outcome of outcomes) {
      // The report names every scenario's deliveries, with their times and bodies when more than one came.
      expect({ scenario: outcome.name, deliveries: outcome.deliveries, stillWatching: outcome.stillWatching, runError: outcome.runError, report }).toEqual({
        scenario: outcome.name,
        deliveries: 1,
        stillWatching: true,
        runError: null,
        report,
      });
      expect({ scenario: outcome.name, floods: outcome.logLines > MAX_LOG_LINES, report }).toMatchObject({ scenario: outcome.name, floods: false });
    }
    // Every request fault was really served (flicker and notice faults are checked in faults-spec).
    for (const outcome of outcomes.filter((o) => !/notice|flicker|mix/.test(o.name))) {
      expect({ scenario: outcome.name, applied: (outcome.applied[outcome.name] ?? 0) > 0 }).toEqual({ scenario: outcome.name, applied: true });
    }
  }, 45_000);
});

test('however long the metadata service has been failing, the next try is at most 5 s away (a sixth of the shortest notice)', () => {
  // The cap was 30 s: after a 10 s outage the fault suite saw notices acted on 14 s after the service came back.
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, random) => {
      const delay = backoffDelay(attempt, METADATA_BACKOFF, () => random);
      expect(delay).toBeGreaterThanOrEqual(250);
      expect(delay).toBeLessThanOrEqual(5000);
    }),
  );
});
