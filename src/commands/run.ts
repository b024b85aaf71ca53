import { loadConfigFromFlags, type ConfigFlags } from './flags.js';
import type { Config } from '../config/types.js';
import { createDaemon } from '../daemon/daemon.js';
import type { ConfigIssue } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { ConfigReloader } from '../daemon/reload.js';
import { shutdownPlan } from '../daemon/shutdown-plan.js';
import { StepUndo } from '../daemon/step-undo.js';
import { NoticeBoard } from '../observe/notice-board.js';
import { NoticeFile } from '../observe/notice-file.js';
import { StatusTracker } from '../observe/plan-status.js';
import { attachSystemdNotifier } from '../observe/systemd-notifier.js';
import { StateLock } from '../notice/state-lock.js';
import { collectWhileIdle } from '../lib/idle-collection.js';
import { turnOptimizingCompilersOn } from '../lib/optimizing-compilers.js';
import { keepYoungGenerationSmall } from '../lib/young-generation.js';

/**
 * An agent with no plan running collects its garbage in full once its heap grew this much
 * (idle-collection.ts): at a 1 s poll, every few minutes.
 */
const IDLE_COLLECTION = { checkEveryMs: 30_000, growthBytes: 2 * 1024 * 1024 };

/**
 * Whether the agent moves data (a background sync, a snapshot step): cli.ts started `run`
 * without V8's optimizing compilers, which only an agent that polls and signals goes without.
 */
function movesData(config: Config): boolean {
  return Object.keys(config.sync).length > 0 || config.steps.some((step) => step.type === 'snapshot');
}

export async function runCommand(args: ConfigFlags): Promise<void> {
  const warnings: ConfigIssue[] = [];
  const config = await loadConfigFromFlags(args, (warning) => warnings.push(warning));
  if (movesData(config)) turnOptimizingCompilersOn();
  const log = createLogger({ level: config.logLevel });
  for (const warning of warnings) log.warn({ variable: warning.path }, `${warning.path}: ${warning.message}`);
  // Before anything else starts: a second agent on this stateDir exits 78 naming the first.
  const lock = await StateLock.acquire(config.stateDir);
  const daemon = createDaemon({ config, log });
  // One view of plan progress for /v1/status, /readyz and the systemd status line alike.
  const status = new StatusTracker(daemon, { notReadyOn: config.readiness.notReadyOn });
  // Loaded only when enabled: prom-client and the server cost nothing otherwise.
  // The notice as applications ask for it: the notice file and GET /v1/notice.
  const notices = new NoticeBoard(daemon);
  const noticeFile = config.noticeFile === null ? undefined : new NoticeFile(notices, config.noticeFile, log);
  const server = config.server.enabled ? await (await import('../observe/local-server.js')).serveDaemon(daemon, config, log, { status, notices }) : undefined;
  const systemd = attachSystemdNotifier({ daemon, log, status });
  // Once started: set before the modules load, the small young generation cost the start
  // 4 ms of GC (13 collections before READY=1, not 5).
  let stopCollecting: (() => void) | undefined;
  const started = (state: string) => {
    if (state !== 'watching') return;
    daemon.off('state', started);
    keepYoungGenerationSmall();
    stopCollecting = collectWhileIdle({ ...IDLE_COLLECTION, busy: () => daemon.health().activeNotices.length > 0 });
  };
  daemon.on('state', started);
  const shutdown = shutdownPlan({ daemon, config, log });
  // Withdrawn notices and a previous boot's leftovers: steps take back what they did.
  const undo = new StepUndo({ daemon, config, log });
  const reloader = new ConfigReloader({
    // The environment cannot change under a running process: its warnings were logged at start.
    load: () => loadConfigFromFlags(args, () => undefined),
    apply: (next) => {
      if (movesData(next)) turnOptimizingCompilersOn();
      daemon.reload(next);
      log.level = next.logLevel;
    },
    log,
    current: config,
  });
  const reload = () => {
    log.info({ signal: 'SIGHUP' }, 'reloading the config');
    void reloader.reload();
  };
  const stop = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'stopping: plans already running finish within their deadlines; the same signal again exits at once');
    // onShutdownSignal: run-plan starts the shutdown plan first; stop() then waits for it.
    void shutdown.beforeStop(signal).finally(() => daemon.stop());
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('SIGHUP', reload);
  log.info({ file: config.file, provider: config.provider, steps: config.steps.map((step) => step.name) }, 'preemptd starting');
  if (config.steps.length === 0) log.warn('the config has no steps: notices will be detected and logged, and nothing else will run');
  try {
    await daemon.run();
  } finally {
    stopCollecting?.();
    process.off('SIGHUP', reload);
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    await undo.close();
    await server?.close();
    await systemd?.close();
    await noticeFile?.close();
    notices.close();
    status.close();
    await lock.release();
    log.info('preemptd stopped');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
  }
}
