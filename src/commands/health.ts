import { hostPort } from '../lib/format.js';
import { errorMessage } from '../lib/errors.js';
import { loadConfigFromFlags, type ConfigFlags } from './flags.js';

/** Below Docker's HEALTHCHECK --timeout (3 s in packaging/Dockerfile), so the answer is ours. */
const HEALTH_TIMEOUT_MS = 2_000;

/** Where a probe on this machine reaches the server: a wildcard listen address means loopback. */
export function healthzUrl(server: { host: string; port: number }): string {
  const host = server.host === '0.0.0.0' ? '127.0.0.1' : server.host === '::' ? '::1' : server.host;
  return `http://${hostPort(host, server.port)}/healthz`;
}

/**
 * `preemptd health`: asks the running agent's /healthz at the address its config (file,
 * PREEMPTD_* variables, flags) gives, as a container HEALTHCHECK does. Exit 0 on 200, 1
 * otherwise (stalled, starting, not running, or the server disabled).
 */
export async function healthCommand(args: ConfigFlags): Promise<void> {
  const config = await loadConfigFromFlags(args);
  if (!config.server.enabled) {
    process.stderr.write('preemptd health: the local server is disabled (server.enabled: false): there is no /healthz to ask\n');
    process.exitCode = 1;
    return;
  }
  const url = healthzUrl(config.server);
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    const body = (await response.json().catch(() => ({}))) as { status?: string };
    process.stdout.write(`${url}: HTTP ${response.status}, ${body.status ?? 'no status'}\n`);
    process.exitCode = response.status === 200 ? 0 : 1;
  } catch (error) {
    process.stdout.write(`${url}: no answer (${errorMessage(error)}): is the agent running?\n`);
    process.exitCode = 1;
  }
}
