import type { IncomingMessage, ServerResponse } from 'node:http';
import { PreemptdError } from '../lib/errors.js';
import type { NoticeKind, ProviderName } from '../notice/notice.js';
import { kindsOf, type SimulatedKinds } from './kinds.js';

/** The refusal for a kind a cloud cannot show, listing the kinds it can (kinds.ts). */
export function cannotShow(provider: ProviderName, kind: string): PreemptdError {
  return new PreemptdError('ERR_USAGE', `the ${provider} simulator cannot show a ${kind} notice; it can show ${Object.keys(kindsOf(provider)).join(', ')}`);
}

/** What the simulator is asked to show; each cloud maps it onto its own endpoints. */
export interface TriggerSpec {
  kind: NoticeKind;
  /** AWS instance-action: terminate | stop | hibernate (defaults from kind); GCP maintenance: migrate | terminate | upcoming. */
  action?: string;
  /** How far ahead of now the notice's own time lies (AWS 2 min, Azure NotBefore...). */
  leadMs?: number;
  /** An explicit notice time (ISO); wins over leadMs. Lets tests send past or far times. */
  time?: string;
  /** GCP upcoming maintenance (`action: upcoming`): its `maintenance_reasons` (default PLANNED_UPDATE). */
  reasons?: string[];
  /** Azure: the VM names the event lists in `Resources` (default: this VM's name). */
  resources?: string[];
}

/** One simulated metadata service. The HTTP server and control API live in metadata-server.ts. */
export interface SimulatedCloud {
  readonly provider: ProviderName;
  /** Serves one metadata request exactly as the real service would. */
  handle(request: IncomingMessage, response: ServerResponse, body: string): void;
  /** Makes a notice appear (in place of any previous one of the same source). */
  trigger(spec: TriggerSpec): void;
  /** Removes every notice (an AWS event cancelled, an Azure event gone). */
  clear(): void;
  /** Answers any hanging requests so the server can close at once. */
  close(): void;
}

/** One simulated cloud as the registry (clouds.ts) holds it. */
export interface SimulatedCloudEntry {
  kinds: SimulatedKinds;
  /** What the simulator shows when no kind is named: the cloud's spot interruption. */
  defaultKind: NoticeKind;
  create(options: SimulatedCloudOptions): SimulatedCloud;
}

export interface SimulatedCloudOptions {
  instanceId?: string;
  /** The VM's name (Azure `compute.name`, which Scheduled Events list in `Resources`). */
  instanceName?: string;
  /**
   * Session tokens (Alibaba hardened mode): `optional` (default) accepts plain GETs too,
   * `required` refuses them with 401, `unavailable` answers the token PUT with 404.
   */
  metadataTokens?: 'optional' | 'required' | 'unavailable';
  /**
   * AWS: whether the instance is in an Auto Scaling group (default true, target lifecycle state
   * InService). false answers that item 404, as most instances do; benches use it for the common case.
   */
  inAutoScalingGroup?: boolean;
}
