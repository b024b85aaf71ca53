import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { compileConfig } from '../helpers/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/lib/log.js';
import type { Provider, WatchContext } from '../../src/providers/types.js';
import { attachSystemdNotifier } from '../../src/observe/systemd-notifier.js';
import { watchdogIntervalMs, type SdNotify } from '../../src/observe/sd-notify.js';
import { describeStatus } from '../../src/observe/systemd-status-line.js';
import { startNotifySocket, type NotifySocket } from '../../bench/lib/notify-socket.js';
import { scriptedNotice } from '../helpers/scripted-notice.js';
import { quietProvider, ScriptedProvider } from '../helpers/scripted-provider.js';
import { StatusTracker } from '../../src/observe/plan-status.js';

const execFileAsync = promisify(execFile);

describe('describeStatus', () => {
  const idle = { provider: 'aws', awaitingFirstRead: false, metadataError: null, running: [], lastFinished: null, stopping: false };
  const terminate = { kind: 'terminate' as const, deadline: new Date('2026-04-11T12:02:00Z'), steps: 5, done: 3, failed: 0 };

  test('an idle agent says which cloud it watches and that no notice is pending', () => {
    expect(describeStatus(idle)).toBe('watching aws, no notice');
  });

  test('before the first metadata read completes, the status says it is pending', () => {
    expect(describeStatus({ ...idle, provider: 'azure', awaitingFirstRead: true })).toBe('watching azure, first metadata read pending');
  });

  test('a running plan shows the notice kind, its deadline in UTC and the steps done', () => {
    expect(describeStatus({ ...idle, running: [terminate] })).toBe('notice terminate at 12:02:00, 3/5 steps done');
  });

  test('failed steps and further notices are counted', () => {
    const rebalance = { kind: 'rebalance' as const, deadline: null, steps: 2, done: 0, failed: 0 };
    expect(describeStatus({ ...idle, running: [rebalance, { ...terminate, failed: 1 }] })).toBe('notice terminate at 12:02:00, 3/5 steps done, 1 failed (+1 more)');
  });

  test('after a plan the last outcome stays visible, and failing metadata reads are named', () => {
    expect(describeStatus({ ...idle, lastFinished: { ...terminate, done: 5 }, metadataError: 'timeout' })).toBe(
      'watching aws, handled terminate at 12:02:00: 5/5 steps done, metadata failing: timeout',
    );
  });

  test('stopping is said first, with the plan still running', () => {
    expect(describeStatus({ ...idle, stopping: true })).toBe('stopping');
    expect(describeStatus({ ...idle, stopping: true, running: [terminate] })).toBe('stopping, notice terminate at 12:02:00, 3/5 steps done');
  });
});

describe('watchdogIntervalMs', () => {
  test('pings at half of WATCHDOG_USEC', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000' }, 42)).toBe(10_000);
  });

  test('is off without WATCHDOG_USEC, with a bad value, or when WATCHDOG_PID names another process', () => {
    expect(watchdogIntervalMs({}, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '7' }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '42' }, 42)).toBe(10_000);
  });
});

/**
 * Runs `body` in a fresh node process with createSdNotify in scope as `sd`. Jest hands each
 * test a copy of process.env that spawned children never see, and the package spawns
 * systemd-notify with the real one: so the real thing runs in a real process.
 */
async function inChild(body: string, env: NodeJS.ProcessEnv): Promise<string> {
  const dist = (file: string) => JSON.stringify(pathToFileURL(join(process.cwd(), 'dist/src', file)).href);
  const script = `import { createSdNotify } from ${dist('observe/sd-notify.js')};
import { silentLogger } from ${dist('lib/log.js')};
const sd = createSdNotify(silentLogger());
${body}`;
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env } });
  return stdout.trim();
}

describe('createSdNotify', () => {
  let socket: NotifySocket | undefined;
  beforeAll(() => {
    if (!existsSync('dist/src/observe/sd-notify.js')) throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.build.json; npm test does)');
  });
  afterEach(async () => {
    await socket?.close();
    socket = undefined;
  });

  test('does nothing outside systemd (no NOTIFY_SOCKET)', async () => {
    expect(await inChild('console.log(sd === null);', { NOTIFY_SOCKET: '' })).toBe('true');
  });

  test('sends READY, STATUS, WATCHDOG and STOPPING to the notification socket in the order asked', async () => {
    socket = await startNotifySocket();
    const took = await inChild(
      `const started = performance.now();
void sd.ready('watching aws, no notice');
void sd.status('notice terminate at 12:02:00, 0/1 steps done');
void sd.watchdog();
await sd.stopping('stopping');
console.log(performance.now() - started, process.pid);`,
      { NOTIFY_SOCKET: socket.path },
    );
    const [ms, pid] = took.split(' ').map(Number);
    // Each message waits for the listener to close the barrier fd; one that kept it would cost 5 s.
    expect(ms).toBeLessThan(4000);
    await socket.waitFor((message) => message.fields.STOPPING === '1');
    expect(socket.messages.map((message) => message.fields)).toEqual([
      { READY: '1', STATUS: 'watching aws, no notice', MAINPID: String(pid) },
      { STATUS: 'notice terminate at 12:02:00, 0/1 steps done', MAINPID: String(pid) },
      { WATCHDOG: '1' },
      { STOPPING: '1', STATUS: 'stopping' },
    ]);
  });

  test('a status asked for while another waits its turn replaces it', async () => {
    socket = await startNotifySocket();
    await inChild(`void sd.ready('starting'); void sd.status('one'); void sd.status('two'); await sd.status('three');`, { NOTIFY_SOCKET: socket.path });
    await socket.waitFor((message) => message.fields.STATUS === 'three');
    expect(socket.messages.map((message) => message.fields.STATUS)).toEqual(['starting', 'three']);
  });

  test('a status asked for after another message is never sent before it', async () => {
    socket = await startNotifySocket();
    await inChild(`void sd.ready('starting'); void sd.status('one'); void sd.stopping('stopping'); await sd.status('stopping, 1 plan');`, {
      NOTIFY_SOCKET: socket.path,
    });
    await socket.waitFor((message) => message.fields.STATUS === 'stopping, 1 plan');
    expect(socket.messages.map((message) => message.fields.STATUS)).toEqual(['starting', 'one', 'stopping', 'stopping, 1 plan']);
  });

  test('a message that cannot be sent is reported, not thrown', async () => {
    const out = await inChild(`await sd.ready('x'); console.log('still running');`, { NOTIFY_SOCKET: '/nonexistent/notify.sock' });
    expect(out).toBe('still running');
  });
});

/** Records what would be sent instead of spawning systemd-notify. */
function recordingSd(): SdNotify & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    ready: async (status) => void sent.push(`READY ${status}`),
    status: async (status) => void sent.push(`STATUS ${status}`),
    stopping: async (status) => void sent.push(`STOPPING ${status}`),
    watchdog: async () => void sent.push('WATCHDOG'),
    flush: async () => {},
  };
}

describe('attachSystemdNotifier', () => {
  let stateDir: string;
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'preemptd-systemd-'));
  });
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  test('is not attached outside systemd', () => {
    const config = compileConfig({ provider: 'aws', stateDir });
    const daemon = new Daemon({ config, log: silentLogger(), provider: quietProvider() });
    expect(attachSystemdNotifier({ daemon, log: silentLogger(), env: {} })).toBeNull();
  });

  test('pings the watchdog while the watch loop is alive and stops once it stalls', async () => {
    const config = compileConfig({ provider: 'aws', stateDir });
    let clock = Date.now();
    const daemon = new Daemon({ config, log: silentLogger(), provider: quietProvider(), now: () => clock });
    const sd = recordingSd();
    const notifier = attachSystemdNotifier({ daemon, log: silentLogger(), sd, env: { WATCHDOG_USEC: '40000' } })!;
    const running = daemon.run();
    try {
      await waitUntil(() => sd.sent.filter((entry) => entry === 'WATCHDOG').length >= 3);
      expect(sd.sent.slice(0, 2)).toEqual(['READY watching aws, first metadata read pending', 'STATUS watching aws, no notice']);

      // The one read was long ago: past the stall threshold the loop counts as hung.
      clock += daemon.health().stallThresholdMs + 1;
      await sleep(60);
      const pingsWhenStalled = sd.sent.filter((entry) => entry === 'WATCHDOG').length;
      await sleep(200);
      expect(daemon.health().watchAlive).toBe(false);
      expect(sd.sent.filter((entry) => entry === 'WATCHDOG').length).toBe(pingsWhenStalled);
    } finally {
      await daemon.stop();
      await running;
      await notifier.close();
    }
    expect(sd.sent.at(-1)).toBe('STOPPING stopping');
  });
});

describe('the STATUS line and /v1/status', () => {
  test('count the same plan progress: the notifier reads the status tracker it is handed', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'preemptd-systemd-'));
    const provider = new ScriptedProvider();
    const config = compileConfig({
      provider: 'aws',
      stateDir,
      steps: [
        { name: 'works', exec: { command: ['true'] } },
        { name: 'breaks', exec: { command: ['false'] } },
        { name: 'later', after: ['works'], exec: { command: ['true'] } },
      ],
    });
    const daemon = new Daemon({ config, log: silentLogger(), provider });
    const status = new StatusTracker(daemon, { notReadyOn: [] });
    const sd = recordingSd();
    const notifier = attachSystemdNotifier({ daemon, log: silentLogger(), sd, env: {}, status })!;
    const running = daemon.run();
    try {
      await waitUntil(() => provider.watching);
      provider.read();
      provider.notice(scriptedNotice('terminate', 120_000));
      await waitUntil(() => status.notices()[0]?.state === 'finished');
      const steps = status.notices()[0]!.steps;
      const done = steps.filter((step) => step.state !== 'pending' && step.state !== 'running').length;
      const failed = steps.filter((step) => step.state === 'failed' || step.state === 'timed_out').length;
      expect([done, failed, steps.length]).toEqual([3, 1, 3]);
      expect(status.progress().running).toEqual([]);
      expect(sd.sent.at(-1)).toMatch(new RegExp(`^STATUS watching aws, handled terminate at [0-9:]{8}: ${done}/${steps.length} steps done, ${failed} failed$`));
    } finally {
      await daemon.stop();
      await running;
      await notifier.close();
      status.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

/** A provider whose metadata reads the test reports one by one. */
function scriptedProvider() {
  let context: WatchContext | undefined;
  let watching: () => void = () => {};
  const started = new Promise<void>((resolve) => (watching = resolve));
  const provider: Provider = {
    name: 'aws',
    instanceFacts: async () => ({}),
    async *watch(watchContext: WatchContext) {
      context = watchContext;
      watching();
      await new Promise((resolve) => watchContext.signal.addEventListener('abort', resolve, { once: true }));
    },
  };
  const read = (ok: boolean) => context!.onRead({ source: 'spot/instance-action', ok, ms: 1, ...(ok ? { status: 404 } : { error: 'timeout' }) });
  return { provider, started, read };
}

describe('the STATUS line while metadata reads fail', () => {
  test('says the metadata service is failing once a streak of errors begins, not for one failing source among answering ones', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'preemptd-systemd-'));
    const scripted = scriptedProvider();
    const daemon = new Daemon({ config: compileConfig({ provider: 'aws', stateDir }), log: silentLogger(), provider: scripted.provider });
    const sd = recordingSd();
    const notifier = attachSystemdNotifier({ daemon, log: silentLogger(), sd, env: {} })!;
    const running = daemon.run();
    try {
      await scripted.started;
      scripted.read(true);
      for (let poll = 0; poll < 5; poll += 1) {
        scripted.read(false);
        scripted.read(true);
      }
      expect(sd.sent).toEqual(['READY watching aws, first metadata read pending', 'STATUS watching aws, no notice']);
      for (let poll = 0; poll < 10; poll += 1) scripted.read(false);
      scripted.read(true);
      expect(sd.sent).toEqual([
        'READY watching aws, first metadata read pending',
        'STATUS watching aws, no notice',
        'STATUS watching aws, no notice, metadata failing: timeout',
        'STATUS watching aws, no notice',
      ]);
    } finally {
      await daemon.stop();
      await running;
      await notifier.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe('READY=1', () => {
  test('is sent once the watch has started, while the first metadata read is still unanswered', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'preemptd-systemd-'));
    const scripted = scriptedProvider();
    const daemon = new Daemon({ config: compileConfig({ provider: 'azure', stateDir }), log: silentLogger(), provider: { ...scripted.provider, name: 'azure' } });
    const sd = recordingSd();
    const notifier = attachSystemdNotifier({ daemon, log: silentLogger(), sd, env: {} })!;
    const running = daemon.run();
    try {
      await scripted.started;
      await waitUntil(() => sd.sent.length > 0);
      expect(sd.sent).toEqual(['READY watching azure, first metadata read pending']);
      scripted.read(true);
      expect(sd.sent).toEqual(['READY watching azure, first metadata read pending', 'STATUS watching azure, no notice']);
    } finally {
      await daemon.stop();
      await running;
      await notifier.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(10);
  }
}
