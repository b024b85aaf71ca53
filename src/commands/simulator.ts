import { PreemptdError } from '../lib/errors.js';
import { durationProblem, parseDuration } from '../lib/duration.js';
import { createLogger } from '../lib/log.js';
import { logFormatFor } from '../lib/log-text.js';
import type { NoticeKind, ProviderName } from '../notice/notice.js';
import { simulatedCloud } from '../simulator/clouds.js';
import { formatFaultSpec, loadFaultSpec } from '../simulator/fault-spec.js';
import { startSimulator } from '../simulator/metadata-server.js';

export interface SimulatorArgs {
  provider: string;
  host: string;
  port: number;
  noticeAfter?: string;
  kind?: string;
  action?: string;
  lead: string;
  faults?: string;
  logLevel: string;
  logFormat?: string;
}

export async function simulatorCommand(args: SimulatorArgs): Promise<void> {
  const provider = args.provider as ProviderName;
  const noticeAfterMs = args.noticeAfter === undefined ? undefined : parseDuration(args.noticeAfter);
  const leadMs = parseDuration(args.lead);
  if (args.noticeAfter !== undefined && noticeAfterMs === undefined) {
    throw new PreemptdError('ERR_USAGE', `--notice-after: got "${args.noticeAfter}": ${durationProblem(args.noticeAfter)}`);
  }
  if (leadMs === undefined) throw new PreemptdError('ERR_USAGE', `--lead: got "${args.lead}": ${durationProblem(args.lead)}`);
  const log = createLogger({ level: args.logLevel as 'info', format: logFormatFor(args.logFormat, process.stdout.isTTY === true) });
  const kind = (args.kind as NoticeKind | undefined) ?? simulatedCloud(provider).defaultKind;
  const faults = args.faults === undefined ? undefined : await loadFaultSpec(args.faults);
  const simulator = await startSimulator({
    provider,
    host: args.host,
    port: args.port,
    noticeAfterMs,
    trigger: { kind, action: args.action, leadMs },
    faults,
    log,
  });
  log.info(
    { url: simulator.url, provider, noticeAfterMs: noticeAfterMs ?? null, kind, faults: faults ? formatFaultSpec(faults) : null },
    `simulated ${provider} metadata service at ${simulator.url}; POST ${simulator.url}/_simulator/trigger or /_simulator/clear to control it`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await simulator.close();
}
