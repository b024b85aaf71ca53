/** The meta.k8s.io/v1 Table responses `kubectl get` asks for, with the columns the real API server prints. */
import type { KubeObject } from './store.js';

/** Ages as kubectl prints them (k8s.io/apimachinery duration.HumanDuration, coarsened). */
function age(created: string | undefined, now: number): string {
  const seconds = Math.max(0, Math.floor((now - Date.parse(created ?? new Date(now).toISOString())) / 1000));
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  if (seconds < 120) return `${seconds}s`;
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (hours < 3) return `${minutes}m`;
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

interface Column {
  name: string;
  type: string;
  cell: (object: KubeObject, now: number) => string | number;
}

const NAME: Column = { name: 'Name', type: 'string', cell: (object) => object.metadata.name };
const AGE: Column = { name: 'Age', type: 'string', cell: (object, now) => age(object.metadata.creationTimestamp, now) };

function nodeStatus(node: KubeObject): string {
  const conditions = (node.status?.conditions ?? []) as Array<{ type: string; status: string }>;
  const ready = conditions.find((condition) => condition.type === 'Ready')?.status === 'True' ? 'Ready' : 'NotReady';
  return node.spec?.unschedulable ? `${ready},SchedulingDisabled` : ready;
}

function nodeRoles(node: KubeObject): string {
  const prefix = 'node-role.kubernetes.io/';
  const roles = Object.keys(node.metadata.labels ?? {}).filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length));
  return roles.length > 0 ? roles.sort().join(',') : '<none>';
}

const COLUMNS: Record<string, Column[]> = {
  nodes: [
    NAME,
    { name: 'Status', type: 'string', cell: nodeStatus },
    { name: 'Roles', type: 'string', cell: nodeRoles },
    AGE,
    { name: 'Version', type: 'string', cell: (node) => String((node.status?.nodeInfo as { kubeletVersion?: string } | undefined)?.kubeletVersion ?? '') },
  ],
  pods: [
    NAME,
    { name: 'Ready', type: 'string', cell: (pod) => { const containers = (pod.spec?.containers as unknown[] | undefined)?.length ?? 0; return `${pod.status?.phase === 'Running' ? containers : 0}/${containers}`; } },
    { name: 'Status', type: 'string', cell: (pod) => (pod.metadata.deletionTimestamp ? 'Terminating' : String(pod.status?.phase ?? 'Unknown')) },
    { name: 'Restarts', type: 'integer', cell: () => 0 },
    AGE,
  ],
};

/** Whether the request's Accept header asks for a Table (kubectl get sends `as=Table;v=v1;g=meta.k8s.io`). */
export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? '') && /g=meta\.k8s\.io/.test(accept ?? '');
}

export function toTable(resource: string, objects: KubeObject[], includeObject: string | undefined, resourceVersion: string): object {
  const columns = COLUMNS[resource] ?? [NAME, AGE];
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: columns.map((column) => ({ name: column.name, type: column.type, format: column.name === 'Name' ? 'name' : '', description: column.name, priority: 0 })),
    rows: objects.map((object) => ({
      cells: columns.map((column) => column.cell(object, now)),
      object:
        includeObject === 'None'
          ? null
          : includeObject === 'Object'
            ? object
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata },
    })),
  };
}
