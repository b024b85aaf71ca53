import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileConfig } from '../helpers/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import type { Plan } from '../../src/plan/executor.js';
import { DEFAULT_STOP_TIMEOUT_MS, parseTimespan, serviceFromCgroup, shutdownPlan, type ShutdownProbe } from '../../src/daemon/shutdown-plan.js';
import { TestResources, writeAgentConfig } from '../helpers/resources.js';
import { quietProvider } from '../helpers/scripted-provider.js';

const resources = new TestResources('preemptd-shutdown-');

describe('parseTimespan', () => {
  test('reads time spans as systemctl show prints them', () => {
    expect(parseTimespan('2min 10s')).toBe(130_000);
    expect(parseTimespan('45s\n')).toBe(45_000);
    expect(parseTimespan('1min 30s 500ms')).toBe(90_500);
    expect(parseTimespan('1h 5min')).toBe(3_900_000);
  });

  test('gives null for infinity and for anything it does not know', () => {
    expect(parseTimespan('infinity')).toBeNull();
    expect(parseTimespan('')).toBeNull();
    expect(parseTimespan('soon')).toBeNull();
  });
});

describe('serviceFromCgroup', () => {
  test('finds the service in a cgroup v2 or v1 listing', () => {
    expect(serviceFromCgroup('0::/system.slice/preemptd.service\n')).toBe('preemptd.service');
    expect(serviceFromCgroup('12:pids:/\n1:name=systemd:/system.slice/preemptd.service\n0::/\n')).toBe('preemptd.service');
  });

  test('gives null outside a service (a login session, a container)', () => {
    expect(serviceFromCgroup('0::/user.slice/user-0.slice/session-3.scope\n')).toBeNull();
    expect(serviceFromCgroup('0::/\n')).toBeNull();
  });
});

function probe(shuttingDown: boolean, stopTimeoutMs: number | null = 25_000): ShutdownProbe & { asked: number } {
  const fake = {
    asked: 0,
    async hostShuttingDown() {
      fake.asked += 1;
      return shuttingDown;
    },
    stopTimeoutMs: async () => stopTimeoutMs,
    bootId: async () => 'boot-1',
  };
  return fake;
}

describe('shutdownPlan', () => {
  async function runningDaemon(onShutdownSignal: 'exit' | 'run-plan', stateDir = resources.tempDir()) {
    const config = compileConfig({ provider: 'aws', stateDir, onShutdownSignal, steps: [{ name: 'note', exec: { command: ['true'] } }] });
    const daemon = new Daemon({ config, log: silentLogger(), provider: quietProvider() });
    const plans: Plan[] = [];
    daemon.on('planStarted', (plan) => plans.push(plan));
    const running = resources.runDaemon(daemon);
    await new Promise<void>((resolve) => daemon.once('read', () => resolve()));
    /** A SIGTERM as the agent handles it: the shutdown plan has its turn, then the daemon stops. */
    async function stopOnSigterm(probe: ShutdownProbe, now?: () => number): Promise<void> {
      await shutdownPlan({ daemon, config, log: silentLogger(), probe, now }).beforeStop('SIGTERM');
      await daemon.stop();
      await running;
    }
    return { daemon, config, plans, running, stateDir, stopOnSigterm };
  }

  test.each([
    ['by default SIGTERM just stops: systemd is not even asked', 'exit', true, 0],
    ['with run-plan, a SIGTERM while the host keeps running (systemctl stop) runs no plan', 'run-plan', false, 1],
  ] as const)('%s', async (_name, onShutdownSignal, shuttingDown, asked) => {
    const { plans, stopOnSigterm } = await runningDaemon(onShutdownSignal);
    const fake = probe(shuttingDown);
    await stopOnSigterm(fake);
    expect(fake.asked).toBe(asked);
    expect(plans).toEqual([]);
  });

  test('with run-plan, a SIGTERM during host shutdown runs the shutdown plan within the stop timeout before stopping', async () => {
    const { daemon, plans, stopOnSigterm } = await runningDaemon('run-plan');
    const finished: string[] = [];
    daemon.on('planFinished', (notice) => finished.push(notice.kind));
    const signalledAt = 1_000_000;
    await stopOnSigterm(probe(true, 25_000), () => signalledAt);
    expect(plans).toHaveLength(1);
    expect(plans[0]!.notice).toMatchObject({ kind: 'shutdown', provider: 'local', deadline: new Date(signalledAt + 25_000) });
    expect(plans[0]!.steps.map((step) => step.name)).toEqual(['note']);
    expect(finished).toEqual(['shutdown']);
  });

  test('SIGINT (a terminal) never runs the shutdown plan; an unreadable stop timeout falls back to systemd\'s default', async () => {
    const { daemon, config, plans, running } = await runningDaemon('run-plan');
    const fake = probe(true, null);
    const plan = shutdownPlan({ daemon, config, log: silentLogger(), probe: fake, now: () => 0 });
    await plan.beforeStop('SIGINT');
    expect(fake.asked).toBe(0);
    await plan.beforeStop('SIGTERM');
    await daemon.stop();
    await running;
    expect(plans).toHaveLength(1);
    expect(plans[0]!.notice.deadline).toEqual(new Date(DEFAULT_STOP_TIMEOUT_MS));
  });

  test('the shutdown plan runs once per boot, even if the agent is restarted during the shutdown', async () => {
    const stateDir = resources.tempDir();
    const first = await runningDaemon('run-plan', stateDir);
    await first.stopOnSigterm(probe(true));
    const second = await runningDaemon('run-plan', stateDir);
    await shutdownPlan({ daemon: second.daemon, config: second.config, log: silentLogger(), probe: probe(true) }).beforeStop('SIGTERM');
    expect(first.plans).toHaveLength(1);
    expect(second.plans).toEqual([]);
  });
});

describe('preemptd run with onShutdownSignal: run-plan', () => {
  /** A stand-in systemctl on PATH: reports the given system state. */
  function fakeSystemctl(state: string): string {
    const dir = resources.tempDir();
    const script = join(dir, 'systemctl');
    writeFileSync(script, `#!/bin/sh\nif [ "$1" = is-system-running ]; then echo ${state}; exit 1; fi\nexit 1\n`);
    chmodSync(script, 0o755);
    return dir;
  }

  async function agentWithShutdownPlan(state: string) {
    const simulator = await resources.simulator({ provider: 'aws' });
    const dir = resources.tempDir();
    const marker = join(dir, 'ran');
    const config = writeAgentConfig(dir, {
      metadataUrl: simulator.url,
      pollInterval: '200ms',
      settings: ['onShutdownSignal: run-plan'],
      steps: [`  - { name: save, exec: { command: [sh, -c, 'sleep 0.3; echo "$PREEMPTD_KIND $PREEMPTD_DEADLINE" > ${marker}'] } }`],
    });
    const agent = resources.agent(['--config', config], { PATH: `${fakeSystemctl(state)}:${process.env.PATH}` });
    await agent.waitForLog((line) => line.msg === 'daemon watching');
    return { agent, marker };
  }

  test('SIGTERM while systemd reports `stopping` runs the shutdown plan to the end, then exits 0', async () => {
    const { agent, marker } = await agentWithShutdownPlan('stopping');
    const signalledAt = Date.now();
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    const [kind, deadline] = readFileSync(marker, 'utf8').trim().split(' ');
    expect(kind).toBe('shutdown');
    // Outside a systemd service the unit's TimeoutStopSec cannot be read: systemd's default applies.
    expect(Date.parse(deadline!) - signalledAt).toBeGreaterThan(DEFAULT_STOP_TIMEOUT_MS - 2000);
    expect(Date.parse(deadline!) - signalledAt).toBeLessThanOrEqual(DEFAULT_STOP_TIMEOUT_MS + 2000);
  });

  test('SIGTERM while the host keeps running exits 0 without the plan', async () => {
    const { agent, marker } = await agentWithShutdownPlan('running');
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(agent.lines().some((line) => String(line.msg).startsWith('SIGTERM without a host shutdown'))).toBe(true);
  });
});
