import { PROVIDER_NAMES, type ProviderName } from '../src/notice/notice.js';
import { runFaultScenario, scenariosFor, type FaultOutcome } from '../test/helpers/fault-scenario.js';

/**
 * The long fault suite: the scenarios of test/integration/faults.test.ts with longer fault phases
 * (default 10 s, so backoff reaches its longer delays) and a longer watch for duplicates.
 * Prints one line per scenario and, per cloud, notices detected and plans run exactly once.
 *
 * npm run bench -- fault-suite [aws gcp azure alibaba tencent] [--fault-seconds 10]
 */
export default async function main(args: string[]): Promise<void> {
  const faultSeconds = Number(args[args.indexOf('--fault-seconds') + 1] || 10);
  const named = args.filter((arg) => (PROVIDER_NAMES as readonly string[]).includes(arg)) as ProviderName[];
  const timing = { faultMs: faultSeconds * 1000, settleMs: 3000, detectLimitMs: 60_000 };
  let total = 0;
  let exactlyOnce = 0;
  for (const provider of named.length ? named : PROVIDER_NAMES) {
    const outcomes = await Promise.all(scenariosFor(provider, timing).map(runFaultScenario));
    for (const outcome of outcomes) console.log(describe(outcome));
    const once = outcomes.filter((outcome) => outcome.deliveries === 1 && outcome.stillWatching && outcome.runError === null).length;
    const detected = outcomes.filter((outcome) => outcome.detectMs !== null).length;
    console.log(`${provider}: ${outcomes.length} scenarios, notice detected after ${detected}, plan run exactly once in ${once} of ${outcomes.length}`);
    total += outcomes.length;
    exactlyOnce += once;
  }
  console.log(`fault suite: plans run exactly once in ${exactlyOnce} of ${total} scenarios`);
}

function describe(outcome: FaultOutcome): string {
  const applied = Object.entries(outcome.applied).map(([name, count]) => `${name}×${count}`).join(' ') || 'none';
  return (
    `${outcome.provider.padEnd(8)} ${outcome.name.padEnd(34)} deliveries ${outcome.deliveries}, detected in ${outcome.detectMs ?? '-'} ms, ` +
    `${outcome.requests} requests, applied ${applied}, log lines ${outcome.logLines} (${outcome.problemLines} warn+), ` +
    `${outcome.stillWatching ? 'still watching' : 'NOT WATCHING'}${outcome.runError ? `, run failed: ${outcome.runError}` : ''}`
  );
}
