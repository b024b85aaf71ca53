import type { Config } from '../config/types.js';
import { providerOptions } from '../daemon/provider-settings.js';
import { sleep } from '../lib/backoff.js';
import { durationProblem, formatDuration, parseDuration } from '../lib/duration.js';
import { errorMessage, EXIT_WAIT_TIMEOUT, PreemptdError } from '../lib/errors.js';
import { hostPort } from '../lib/format.js';
import { createLogger, type Logger } from '../lib/log.js';
import { untilAborted } from '../lib/until-aborted.js';
import type { NoticeKind } from '../notice/notice.js';
import { noticeView, type NoticeView } from '../notice/notice-view.js';
import { detectProvider } from '../providers/detect.js';
import { createProvider } from '../providers/registry.js';
import { loadConfigFromFlags, type ConfigFlags } from './flags.js';

export type WaitArgs = ConfigFlags & {
  /** Base URL of the running agent's local server; default: the config's server.listen. */
  agent?: string;
  timeout?: string;
  kind?: string[];
};

/** One long-poll asks for at most this long (fetch gives up on headers after 5 minutes). */
const POLL_MS = 60_000;
/** Pause before asking an agent that answered 503 (stopping, or too many waiting) again. */
const BUSY_RETRY_MS = 1_000;

/**
 * `preemptd wait`: blocks until a notice, prints it as JSON (the notice file's shape) and
 * exits 0; exits 2 when --timeout passes first. Asks the running agent (GET /v1/notice);
 * when no agent answers there, watches the metadata service itself.
 */
export async function waitCommand(args: WaitArgs): Promise<void> {
  const timeoutMs = args.timeout === undefined ? undefined : parseDuration(args.timeout);
  if (args.timeout !== undefined && timeoutMs === undefined) throw new PreemptdError('ERR_USAGE', `--timeout: got "${args.timeout}": ${durationProblem(args.timeout)}`);
  if (args.agent !== undefined && !/^https?:\/\/[^/]/.test(args.agent)) {
    throw new PreemptdError('ERR_USAGE', `--agent: got "${args.agent}": expected the agent's local server as a URL, e.g. http://127.0.0.1:9464`);
  }
  const kinds = args.kind?.length ? (args.kind as NoticeKind[]) : undefined;
  const config = await loadConfigFromFlags(args, undefined, { defaultOptional: true });
  // Logs go to stderr: stdout carries only the notice.
  const log = createLogger({ level: args.logLevel ? config.logLevel : 'warn', destination: process.stderr });
  const signal = timeoutMs === undefined ? new AbortController().signal : AbortSignal.timeout(timeoutMs);
  const agent = args.agent ?? (config.server.enabled ? `http://${hostPort(loopbackFor(config.server.host), config.server.port)}` : undefined);
  let notice = agent === undefined ? 'no agent' : await askAgent(agent, kinds, signal, log);
  if (notice === 'no agent') {
    log.warn({ agent }, `no agent answers${agent ? ` at ${agent}` : ''}: watching the metadata service itself`);
    notice = await watchMetadata(config, kinds, signal, log);
  }
  if (notice) process.stdout.write(`${JSON.stringify(notice, null, 2)}\n`);
  else {
    process.stderr.write(`preemptd: no notice within ${formatDuration(timeoutMs ?? 0)}\n`);
    process.exitCode = EXIT_WAIT_TIMEOUT;
  }
  await new Promise<void>((resolve) => log.flush(() => resolve()));
}

/** The address to reach a server listening on `host`: a wildcard is reached on loopback. */
function loopbackFor(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
}

/** Long-polls GET /v1/notice; 'no agent' when nothing listens there; undefined when `signal` aborts. */
async function askAgent(agent: string, kinds: NoticeKind[] | undefined, signal: AbortSignal, log: Logger): Promise<NoticeView | 'no agent' | undefined> {
  const query = kinds ? `&kind=${kinds.join(',')}` : '';
  while (!signal.aborted) {
    let response: Response;
    try {
      response = await fetch(`${agent.replace(/\/+$/, '')}/v1/notice?wait=${POLL_MS / 1000}s${query}`, { signal });
    } catch (error) {
      if (signal.aborted) return undefined;
      log.debug({ agent, err: errorMessage(error) }, 'the agent did not answer');
      return 'no agent';
    }
    const text = await response.text().catch(() => '');
    if (response.status === 200) return JSON.parse(text) as NoticeView;
    if (response.status === 503) {
      log.debug({ agent, body: text }, 'the agent is busy or stopping; asking again');
      await sleep(BUSY_RETRY_MS, signal);
    } else if (response.status !== 204) {
      throw new PreemptdError('ERR_AGENT_API', `${agent}/v1/notice answered HTTP ${response.status}: ${text.trim().slice(0, 200) || 'no body'}; expected 200 or 204 from a preemptd agent`);
    }
  }
  return undefined;
}

/** Watches the metadata service as the agent would, until a notice of `kinds` shows or `signal` aborts. */
async function watchMetadata(config: Config, kinds: NoticeKind[] | undefined, signal: AbortSignal, log: Logger): Promise<NoticeView | undefined> {
  const name = config.provider === 'auto' ? (await detectProvider({ probe: true, metadataUrl: config.metadataUrl ?? undefined, log })).provider : config.provider;
  const provider = await createProvider(name, providerOptions(config, name), log);
  const stop = new AbortController();
  const watchSignal = AbortSignal.any([signal, stop.signal]);
  try {
    for await (const event of untilAborted(provider.watch({ signal: watchSignal, log, onRead: () => undefined }), watchSignal)) {
      if (event.type === 'notice' && (!kinds || kinds.includes(event.notice.kind))) return noticeView(event.notice, Date.now());
    }
  } finally {
    stop.abort();
  }
  return undefined;
}
