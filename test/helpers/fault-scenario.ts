import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { compileConfig } from './config.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import type { NoticeKind, ProviderName } from '../../src/notice/notice.js';
import { NO_FAULTS, parseFaultSpec } from '../../src/simulator/fault-spec.js';
import { startSimulator } from '../../src/simulator/metadata-server.js';
import { startReceiver } from './receiver.js';

/**
 * One fault scenario: an in-process Daemon (real provider, real plan) against the simulator
 * with a fault spec on for `faultMs`, then (unless the faults stay on) faults cleared and a
 * notice shown. The plan's one webhook step posts to a loopback receiver, so deliveries
 * count plan runs. Shared by test/faults.test.ts and bench/fault-suite.
 */
export const SPOT_KIND: Record<ProviderName, NoticeKind> = { aws: 'terminate', gcp: 'preempt', azure: 'preempt', alibaba: 'terminate', tencent: 'terminate' };

export interface FaultScenario {
  provider: ProviderName;
  /** A label for reports: the fault, or the mix's name. */
  name: string;
  spec: string;
  /** Keep the faults on while the notice is shown (mixes, flicker, notice faults). */
  faultsDuringNotice?: boolean;
  /** Clear the notice this long after showing it: a notice that appears, then disappears. */
  vanishAfterMs?: number;
  faultMs: number;
  /** How long to keep watching after the first delivery, for a second one to show up. */
  settleMs: number;
  /** How long the notice may take to be acted on once shown. */
  detectLimitMs: number;
  /** What the simulator's fault draws use; Math.random when undefined (tests pass a seeded one). */
  random?: () => number;
}

export interface FaultOutcome {
  provider: ProviderName;
  name: string;
  /** Faults the simulator applied, by name. */
  applied: Record<string, number>;
  /** Metadata requests served in the whole scenario. */
  requests: number;
  deliveries: number;
  /**
   * Each delivery: ms after the notice was shown, and the first 120 characters of its body, so
   * a second one shows whether it was the step's retry (the same body) or another plan run.
   */
  deliveryNotes: string[];
  /** From showing the notice to the webhook arriving; null when it never did. */
  detectMs: number | null;
  logLines: number;
  /** Lines at warn or above. */
  problemLines: number;
  /** Whether the daemon was still watching when the scenario ended (no crash, no restart). */
  stillWatching: boolean;
  /** What daemon.run() rejected with, if it did. */
  runError: string | null;
}

/**
 * Poll intervals: fast enough for a short suite, slow enough that some 20 agents side by side
 * leave CPU for the rest of npm test; Azure allows 5 requests per second per VM.
 */
const POLL: Record<ProviderName, string> = { aws: '100ms', gcp: '100ms', azure: '250ms', alibaba: '100ms', tencent: '100ms' };

export async function runFaultScenario(scenario: FaultScenario): Promise<FaultOutcome> {
  const { provider } = scenario;
  const stateDir = mkdtempSync(join(tmpdir(), `preemptd-faults-${provider}-`));
  const simulator = await startSimulator({ provider, faults: parseFaultSpec(scenario.spec), random: scenario.random });
  const receiver = await startReceiver();
  let logLines = 0;
  let problemLines = 0;
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        logLines += 1;
        if ((JSON.parse(line) as { level: number }).level >= 40) problemLines += 1;
      }
      done();
    },
  });
  const config = compileConfig(
    {
      provider,
      metadataUrl: simulator.url,
      pollInterval: POLL[provider],
      requestTimeout: '300ms',
      stateDir,
      aws: { tokenTimeout: '300ms' },
      gcp: { hangTimeout: 1 },
      azure: { firstCallTimeout: '500ms' },
      server: { enabled: false },
      // Deliveries count plan runs only while the step never retries a request the receiver
      // got: an attempt given 20 s (not 5) outlasts any stall of this loaded process.
      steps: [{ name: 'tell-ops', webhook: { url: receiver.url('/hook'), retries: 1, timeout: '20s' } }],
    },
    { file: undefined },
  );
  const daemon = createDaemon({ config, log: pino({ level: 'info' }, sink) });
  let runError: string | null = null;
  const running = daemon.run().catch((error: unknown) => {
    runError = String(error);
  });
  try {
    await sleep(scenario.faultMs);
    if (!scenario.faultsDuringNotice) simulator.faults.set(NO_FAULTS);
    const shownAt = Date.now();
    simulator.trigger({ kind: SPOT_KIND[provider] });
    if (scenario.vanishAfterMs !== undefined) {
      const vanishAfterMs = scenario.vanishAfterMs;
      setTimeout(() => simulator.clear(), vanishAfterMs);
    }
    const first = await receiver.waitFor(1, scenario.detectLimitMs).catch(() => undefined);
    const detectMs = first ? first[0]!.at - shownAt : null;
    await sleep(scenario.settleMs);
    const stillWatching = daemon.state === 'watching';
    return {
      provider,
      name: scenario.name,
      applied: Object.fromEntries(simulator.faults.applied),
      requests: [...simulator.requests.values()].reduce((sum, count) => sum + count, 0),
      deliveries: receiver.requests.length,
      deliveryNotes: receiver.requests.map((request) => `+${request.at - shownAt} ms ${request.body.slice(0, 120)}`),
      detectMs,
      logLines,
      problemLines,
      stillWatching,
      runError,
    };
  } finally {
    await daemon.stop();
    await simulator.close();
    await running;
    await receiver.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Request faults that can hit this provider (only AWS and Alibaba ask for tokens). */
export function requestFaultsFor(provider: ProviderName): string[] {
  const all = ['500', '503', '429', '429-retry-after', '401', 'reset', 'hang', 'hang-token', 'drip', 'truncated', 'wrong-types', 'html', 'endless', 'redirect'];
  return provider === 'aws' || provider === 'alibaba' ? all : all.filter((fault) => fault !== 'hang-token');
}

/** About a third of requests fail in each mix; half the token requests hang. */
export const MIXES: Record<string, string> = {
  'errors mix': '500:0.1,503:0.05,429:0.05,429-retry-after:0.05,reset:0.05,html:0.05',
  'bodies mix': 'truncated:0.1,wrong-types:0.1,drip=30ms:0.05,401:0.1,hang:0.05,hang-token:0.5',
};

/** Every scenario of one provider: each request fault alone, the mixes, and the notice faults. */
export function scenariosFor(provider: ProviderName, timing: Pick<FaultScenario, 'faultMs' | 'settleMs' | 'detectLimitMs'>): FaultScenario[] {
  return [
    ...requestFaultsFor(provider).map((fault) => ({ provider, name: fault, spec: fault, ...timing })),
    ...Object.entries(MIXES).map(([name, spec]) => ({ provider, name, spec, ...timing })),
    ...Object.entries(MIXES).map(([name, spec]) => ({ provider, name: `${name}, on at the notice`, spec, faultsDuringNotice: true, ...timing })),
    { provider, name: 'flicker', spec: 'flicker:0.5', faultsDuringNotice: true, ...timing },
    { provider, name: 'notice appears, then disappears', spec: '', vanishAfterMs: 600, ...timing },
    // GCP notices carry no time: past and far-future times do not apply there.
    ...(provider === 'gcp'
      ? []
      : [
          { provider, name: 'notice-past', spec: 'notice-past', faultsDuringNotice: true, ...timing },
          { provider, name: 'notice-future', spec: 'notice-future', faultsDuringNotice: true, ...timing },
        ]),
  ];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
