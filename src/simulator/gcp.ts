import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PreemptdError } from '../lib/errors.js';
import { cannotShow, type SimulatedCloud, type SimulatedCloudOptions, type TriggerSpec } from './cloud.js';
import { directoryPrefix } from './directory.js';
import { directoryAnswer, type GcpAnswer } from './gcp-directory.js';

const BASE_PATH = '/computeMetadata/v1/';
/** The real server caps how long a hanging GET may wait. */
const MAX_HANG_SECONDS = 3600;
/** What `instance/upcoming-maintenance` shows while nothing is pending (one of GCE's three shapes). */
const NOTHING_UPCOMING = '{}';
/** Keys whose value is a JSON object: `alt=json` serves it as it is, not as a JSON string. */
const JSON_VALUED_KEYS = new Set(['instance/upcoming-maintenance']);
/** How long a simulated upcoming maintenance window lasts. */
const UPCOMING_WINDOW_MS = 60 * 60_000;
/** How far ahead a simulated upcoming maintenance starts when the trigger gives no time. */
const UPCOMING_LEAD_MS = 60 * 60_000;
const MAINTENANCE_VALUES: Record<string, string> = {
  migrate: 'MIGRATE_ON_HOST_MAINTENANCE',
  terminate: 'TERMINATE_ON_HOST_MAINTENANCE',
};

const MISSING_FLAVOR_BODY = [
  'Your client does not have permission to get URL /computeMetadata/v1/ from this server.',
  'Missing Metadata-Flavor:Google header.',
  '',
].join(' ');

function textAnswer(status: number, body: string): GcpAnswer {
  return { status, body, contentType: 'application/text' };
}

interface Waiter {
  url: URL;
  response: ServerResponse;
  timer: NodeJS.Timeout;
}

/**
 * The GCE metadata server: the flavor header is required both ways, every value has an
 * ETag, and hanging GETs (`wait_for_change`, `last_etag`, `timeout_sec`) are answered the
 * moment the value changes.
 */
export class SimulatedGcp implements SimulatedCloud {
  readonly provider = 'gcp' as const;
  private readonly values = new Map<string, { value: string; etag: string }>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private version = 0;

  constructor(options: SimulatedCloudOptions) {
    const initial: Record<string, string> = {
      'instance/id': options.instanceId ?? '4520031799277581759',
      'instance/name': options.instanceName ?? 'trainer-spot-1',
      'instance/hostname': `${options.instanceName ?? 'trainer-spot-1'}.us-central1-a.c.demo-project.internal`,
      'instance/zone': 'projects/123456789012/zones/us-central1-a',
      'instance/machine-type': 'projects/123456789012/machineTypes/g2-standard-4',
      'instance/scheduling/preemptible': 'TRUE',
      'instance/scheduling/provisioning-model': 'SPOT',
      'instance/preempted': 'FALSE',
      'instance/maintenance-event': 'NONE',
      'instance/upcoming-maintenance': NOTHING_UPCOMING,
      'project/project-id': 'demo-project',
      'project/numeric-project-id': '123456789012',
    };
    for (const [key, value] of Object.entries(initial)) this.set(key, value);
  }

  /** Sets a value with a fresh ETag and answers everyone waiting for it to change. */
  private set(key: string, value: string): void {
    this.version += 1;
    const etag = createHash('sha256').update(`${key}\0${value}\0${this.version}`).digest('hex').slice(0, 16);
    this.values.set(key, { value, etag });
    for (const [watched, waiting] of this.waiters) {
      if (watched !== key && !key.startsWith(directoryPrefix(watched))) continue;
      this.waiters.delete(watched);
      for (const waiter of waiting) this.release(waiter);
    }
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://metadata.google.internal');
    response.setHeader('Metadata-Flavor', 'Google');
    response.setHeader('Server', 'Metadata Server for VM');
    if (request.headers['metadata-flavor'] !== 'Google' || request.headers['x-forwarded-for'] !== undefined) {
      this.send(response, textAnswer(403, MISSING_FLAVOR_BODY));
      return;
    }
    if (request.method !== 'GET') {
      this.send(response, textAnswer(405, 'Method Not Allowed\n'));
      return;
    }
    const current = this.answer(url);
    if (url.searchParams.get('wait_for_change') !== 'true' || current.status !== 200 || !url.pathname.startsWith(BASE_PATH)) {
      this.send(response, current);
      return;
    }
    const timeoutText = url.searchParams.get('timeout_sec');
    const timeoutSeconds = timeoutText === null ? MAX_HANG_SECONDS : Number(timeoutText);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) {
      this.send(response, textAnswer(400, `Bad Request: timeout_sec must be a positive integer, got ${timeoutText}\n`));
      return;
    }
    const lastEtag = url.searchParams.get('last_etag');
    // A client whose last ETag is stale gets the current value at once.
    if (lastEtag !== null && lastEtag !== current.etag) {
      this.send(response, current);
      return;
    }
    this.wait(url, response, Math.min(timeoutSeconds, MAX_HANG_SECONDS));
  }

  /** What the server answers for a URL right now: a value, a directory, a move, or 404. */
  private answer(url: URL): GcpAnswer {
    const { pathname } = url;
    if (pathname === BASE_PATH.slice(0, -1)) return { ...textAnswer(301, 'Moved Permanently\n'), location: BASE_PATH };
    if (!pathname.startsWith(BASE_PATH)) {
      const listing = pathname === '/' ? 'computeMetadata/\n' : pathname === '/computeMetadata/' ? 'v1/\n' : undefined;
      return listing === undefined ? textAnswer(404, 'Not Found\n') : textAnswer(200, listing);
    }
    const key = pathname.slice(BASE_PATH.length);
    const leaf = this.values.get(key);
    if (leaf) {
      const json = url.searchParams.get('alt') === 'json';
      // A value that is a JSON document already (upcoming-maintenance) is served as that document.
      const body = json && !JSON_VALUED_KEYS.has(key) ? JSON.stringify(leaf.value) : leaf.value;
      return { status: 200, body, contentType: json ? 'application/json' : 'application/text', etag: leaf.etag };
    }
    const values = new Map([...this.values].map(([name, entry]) => [name, entry.value]));
    return directoryAnswer(values, BASE_PATH, key, url.searchParams) ?? textAnswer(404, 'Not Found\n');
  }

  /** Holds a hanging GET until the key, or anything under the directory, changes. */
  private wait(url: URL, response: ServerResponse, timeoutSeconds: number): void {
    const watched = url.pathname.slice(BASE_PATH.length);
    const waiter: Waiter = {
      url,
      response,
      timer: setTimeout(() => {
        this.waiters.get(watched)?.delete(waiter);
        this.send(response, this.answer(url));
      }, timeoutSeconds * 1000),
    };
    let waiting = this.waiters.get(watched);
    if (!waiting) this.waiters.set(watched, (waiting = new Set()));
    waiting.add(waiter);
    response.on('close', () => {
      clearTimeout(waiter.timer);
      this.waiters.get(watched)?.delete(waiter);
    });
  }

  private release(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.send(waiter.response, this.answer(waiter.url));
  }

  private send(response: ServerResponse, answer: GcpAnswer): void {
    if (response.writableEnded || response.destroyed) return;
    const headers: Record<string, string | number> = { 'Content-Type': answer.contentType, 'Content-Length': Buffer.byteLength(answer.body) };
    if (answer.etag !== undefined) headers.ETag = answer.etag;
    if (answer.location !== undefined) headers.Location = answer.location;
    response.writeHead(answer.status, headers);
    response.end(answer.body);
  }

  trigger(spec: TriggerSpec): void {
    if (spec.kind === 'preempt') {
      this.set('instance/preempted', 'TRUE');
    } else if (spec.kind === 'maintenance' && spec.action === 'upcoming') {
      this.set('instance/upcoming-maintenance', upcomingMaintenance(spec));
    } else if (spec.kind === 'maintenance') {
      const action = spec.action ?? 'MIGRATE_ON_HOST_MAINTENANCE';
      const value = MAINTENANCE_VALUES[action.toLowerCase()] ?? action;
      if (!/^[A-Z_]+_ON_HOST_MAINTENANCE$/.test(value)) {
        throw new PreemptdError('ERR_USAGE', `GCE maintenance action ${JSON.stringify(action)} is not migrate, terminate, upcoming or a value such as MIGRATE_ON_HOST_MAINTENANCE`);
      }
      this.set('instance/maintenance-event', value);
    } else {
      throw cannotShow(this.provider, spec.kind);
    }
  }

  clear(): void {
    if (this.values.get('instance/preempted')?.value !== 'FALSE') this.set('instance/preempted', 'FALSE');
    if (this.values.get('instance/maintenance-event')?.value !== 'NONE') this.set('instance/maintenance-event', 'NONE');
    if (this.values.get('instance/upcoming-maintenance')?.value !== NOTHING_UPCOMING) this.set('instance/upcoming-maintenance', NOTHING_UPCOMING);
  }

  close(): void {
    for (const waiting of this.waiters.values()) for (const waiter of waiting) this.release(waiter);
    this.waiters.clear();
  }
}

/**
 * `instance/upcoming-maintenance?alt=json` for a PENDING scheduled maintenance whose window
 * starts at the trigger's time (or lead, default an hour) and lasts an hour.
 */
function upcomingMaintenance(spec: TriggerSpec): string {
  const start = spec.time === undefined ? Date.now() + (spec.leadMs ?? UPCOMING_LEAD_MS) : Date.parse(spec.time);
  if (Number.isNaN(start)) throw new PreemptdError('ERR_USAGE', `upcoming maintenance time ${JSON.stringify(spec.time)} is not an ISO time`);
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const reasons: unknown = spec.reasons ?? ['PLANNED_UPDATE'];
  if (!Array.isArray(reasons) || !reasons.every((reason) => typeof reason === 'string')) {
    throw new PreemptdError('ERR_USAGE', `upcoming maintenance reasons ${JSON.stringify(reasons)} are not a list of words such as ["FAILURE_GPU_XID"]`);
  }
  return JSON.stringify({
    can_reschedule: !reasons.some((reason) => reason.startsWith('FAILURE_')),
    latest_window_start_time: iso(start),
    maintenance_reasons: reasons,
    maintenance_status: 'PENDING',
    type: 'SCHEDULED',
    window_end_time: iso(start + UPCOMING_WINDOW_MS),
    window_start_time: iso(start),
  });
}
