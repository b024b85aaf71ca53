/** The resources the fake API server serves and the discovery documents kubectl reads them from. */

export interface ResourceDef {
  group: string;
  versions: string[];
  name: string;
  singularName: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
}

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];

export function resourceDefs(evictionVersions: readonly string[]): ResourceDef[] {
  const policyVersions = ['v1', 'v1beta1'].filter((version) => evictionVersions.includes(version));
  return [
    { group: '', versions: ['v1'], name: 'nodes', singularName: 'node', kind: 'Node', namespaced: false, verbs: [...READ, ...WRITE], shortNames: ['no'] },
    { group: '', versions: ['v1'], name: 'pods', singularName: 'pod', kind: 'Pod', namespaced: true, verbs: [...READ, ...WRITE], shortNames: ['po'] },
    { group: '', versions: ['v1'], name: 'events', singularName: 'event', kind: 'Event', namespaced: true, verbs: [...READ, ...WRITE], shortNames: ['ev'] },
    { group: '', versions: ['v1'], name: 'namespaces', singularName: 'namespace', kind: 'Namespace', namespaced: false, verbs: [...READ, ...WRITE], shortNames: ['ns'] },
    { group: 'apps', versions: ['v1'], name: 'daemonsets', singularName: 'daemonset', kind: 'DaemonSet', namespaced: true, verbs: [...READ, ...WRITE], shortNames: ['ds'] },
    { group: 'policy', versions: policyVersions, name: 'poddisruptionbudgets', singularName: 'poddisruptionbudget', kind: 'PodDisruptionBudget', namespaced: true, verbs: [...READ, ...WRITE], shortNames: ['pdb'] },
    { group: 'authorization.k8s.io', versions: ['v1'], name: 'selfsubjectaccessreviews', singularName: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'] },
  ];
}

function resourceList(groupVersion: string, defs: ResourceDef[], extra: object[] = []): object {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: [
      ...defs.map((def) => ({ name: def.name, singularName: def.singularName, namespaced: def.namespaced, kind: def.kind, verbs: def.verbs, ...(def.shortNames ? { shortNames: def.shortNames } : {}) })),
      ...extra,
    ],
  };
}

function groupOf(name: string, versions: string[]): object {
  const entries = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: entries, preferredVersion: entries[0] };
}

/** The discovery document at `path` (/api, /api/v1, /apis, /apis/g, /apis/g/v, /version), or undefined. */
export function discovery(path: string, defs: ResourceDef[], evictionVersions: readonly string[], host: string): object | undefined {
  if (path === '/version') {
    return { major: '1', minor: '32', gitVersion: 'v1.32.0', gitCommit: 'preemptd-fake', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23', compiler: 'gc', platform: 'linux/amd64' };
  }
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }] };
  if (path === '/api/v1') {
    const evictionVersion = ['v1', 'v1beta1'].find((version) => evictionVersions.includes(version));
    const subresources = [
      { name: 'nodes/status', singularName: '', namespaced: false, kind: 'Node', verbs: ['get', 'patch', 'update'] },
      { name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] },
      ...(evictionVersion ? [{ name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: evictionVersion, kind: 'Eviction', verbs: ['create'] }] : []),
    ];
    return resourceList('v1', defs.filter((def) => def.group === ''), subresources);
  }
  const groups = [...new Set(defs.filter((def) => def.group !== '' && def.versions.length > 0).map((def) => def.group))];
  const versionsOf = (group: string): string[] => [...new Set(defs.filter((def) => def.group === group).flatMap((def) => def.versions))];
  if (path === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((group) => groupOf(group, versionsOf(group))) };
  const match = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (!match || !groups.includes(match[1]!)) return undefined;
  const [, group, version] = match as unknown as [string, string, string | undefined];
  if (!version) return { kind: 'APIGroup', apiVersion: 'v1', ...groupOf(group, versionsOf(group)) };
  if (!versionsOf(group).includes(version)) return undefined;
  return resourceList(`${group}/${version}`, defs.filter((def) => def.group === group && def.versions.includes(version)));
}

export interface ResourcePath {
  def: ResourceDef;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Parses /api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]] and /apis/G/V/... */
export function parseResourcePath(path: string, defs: ResourceDef[]): ResourcePath | undefined {
  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  if (segments[0] === 'api') [group, version] = ['', segments[1] ?? ''];
  else if (segments[0] === 'apis') [group, version] = [segments[1] ?? '', segments[2] ?? ''];
  else return undefined;
  let rest = segments.slice(group === '' ? 2 : 3);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource, ...extra] = rest;
  const def = defs.find((candidate) => candidate.group === group && candidate.name === resource && candidate.versions.includes(version));
  if (!def || extra.length > 0 || (namespace !== undefined && !def.namespaced)) return undefined;
  return { def, version, ...(namespace !== undefined ? { namespace } : {}), ...(name ? { name } : {}), ...(subresource ? { subresource } : {}) };
}
