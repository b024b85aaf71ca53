import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/examples.js';
import { validateKubernetesObject as validate, type Manifest } from '../helpers/kubernetes-schema.js';

// What `kubectl kustomize` renders from packaging/kubernetes/overlays/*: the objects a user
// applies, checked against the Kubernetes OpenAPI schemas (kubernetes-models' validators,
// offline) and for the fields that make them safe to run.

const KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!KUBECTL) console.warn('kubectl is not on PATH: the kustomize overlays in packaging/kubernetes are not rendered or checked');
const describeWithKubectl = KUBECTL ? describe : describe.skip;

// docs/benchmarks.md: idle RSS after 10 minutes at a 1 s poll, the largest measured
// (`bundle`, today's build: 95.3 MB; `idle-cost`: 92.8 MB), and the peak while a
// snapshot uploads 2 GiB (`snapshot-throughput`: 173-184 MB).
const IDLE_RSS_BYTES = 95.3e6;
const PEAK_RSS_BYTES = 184e6;

/** The node mode's permissions, and no others (issue 15): `group/resource verb`. */
const MINIMAL_RBAC = [
  '/nodes get',
  '/nodes list',
  '/nodes watch',
  '/nodes patch',
  '/pods list',
  '/pods/eviction create',
  '/events create',
  '/events patch',
  'apps/daemonsets get',
].sort();

function render(overlay: string): Manifest[] {
  const result = spawnSync('kubectl', ['kustomize', join(ROOT, 'packaging/kubernetes/overlays', overlay)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`kubectl kustomize overlays/${overlay} failed: ${result.stderr}`);
  return parseAllDocuments(result.stdout).map((document) => document.toJS() as Manifest);
}

function only(objects: Manifest[], kind: string): Manifest {
  const found = objects.filter((object) => object.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0]!;
}

/** A Kubernetes memory quantity in bytes: `128Mi`, `200M`, `1Gi`, `1048576`. */
function bytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  if (match === null) throw new Error(`not a memory quantity: ${quantity}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

function permissions(role: Manifest): string[] {
  return (role.rules as Manifest[])
    .flatMap((rule) => (rule.apiGroups as string[]).flatMap((group) => (rule.resources as string[]).flatMap((resource) => (rule.verbs as string[]).map((verb) => `${group}/${resource} ${verb}`))))
    .sort();
}

function envValueFrom(container: Manifest, name: string): Manifest | undefined {
  return (container.env as Manifest[]).find((entry) => entry.name === name)?.valueFrom;
}

describeWithKubectl('the validator', () => {
  test('rejects an object its schema does not allow, naming the field, and a kind it has no schema for', async () => {
    const [configMap] = render('daemonset').filter((object) => object.kind === 'ConfigMap');
    await expect(validate({ ...configMap, data: { 'config.yaml': 42 } })).rejects.toThrow(/data\/config\.yaml must be string/);
    await expect(validate({ apiVersion: 'v1', kind: 'Podd', metadata: { name: 'x' } })).rejects.toThrow('no Kubernetes schema for v1 Podd');
  });
});

describe.each(['daemonset', 'sidecar'])('kubectl kustomize packaging/kubernetes/overlays/%s', (overlay) => {
  (KUBECTL ? test : test.skip)('renders objects that are valid against the Kubernetes OpenAPI schemas', async () => {
    const objects = render(overlay);
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) await validate(object);
  });
});

describeWithKubectl('overlays/daemonset', () => {
  const objects = KUBECTL ? render('daemonset') : [];
  const daemonSet = () => only(objects, 'DaemonSet');
  const pod = () => daemonSet().spec.template.spec;

  test('is the base: a DaemonSet, its ServiceAccount, a ClusterRole and its binding, its plan, all in kube-system', () => {
    expect(objects.map((object) => object.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'ServiceAccount']);
    for (const object of objects.filter((entry) => !entry.kind.startsWith('Cluster'))) expect(object.metadata.namespace).toBe('kube-system');
    expect(pod().volumes.find((volume: Manifest) => volume.name === 'config').configMap.name).toBe(only(objects, 'ConfigMap').metadata.name);
    expect(pod().containers[0].image).toBe('preemptd:0.1.0');
  });

  test('grants exactly the minimal RBAC of the node mode, to the DaemonSet\'s ServiceAccount', () => {
    const role = only(objects, 'ClusterRole');
    expect(permissions(role)).toEqual(MINIMAL_RBAC);
    for (const rule of role.rules) expect(Object.keys(rule).sort()).toEqual(['apiGroups', 'resources', 'verbs']);
    const binding = only(objects, 'ClusterRoleBinding');
    const account = only(objects, 'ServiceAccount');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace }]);
    expect(pod().serviceAccountName).toBe(account.metadata.name);
    // It calls the API: the token stays mounted.
    expect(pod().automountServiceAccountToken).not.toBe(false);
    expect(account.automountServiceAccountToken).not.toBe(false);
  });

  test('knows its Node from the downward API, takes no service links, and requests the memory the agent uses', () => {
    const container = pod().containers[0];
    expect(envValueFrom(container, 'NODE_NAME')).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
    expect(pod().enableServiceLinks).toBe(false);
    expect(bytes(container.resources.requests.memory)).toBeGreaterThanOrEqual(IDLE_RSS_BYTES);
    expect(bytes(container.resources.limits.memory)).toBeGreaterThanOrEqual(PEAK_RSS_BYTES);
  });
});

describeWithKubectl('overlays/sidecar', () => {
  const objects = KUBECTL ? render('sidecar') : [];
  const job = () => only(objects, 'Job');
  const pod = () => job().spec.template.spec;
  const sidecar = () => pod().initContainers.find((container: Manifest) => container.name === 'preemptd');

  test('is a Job and its plan, with no ServiceAccount or RBAC: the pod never calls the API', () => {
    expect(objects.map((object) => object.kind).sort()).toEqual(['ConfigMap', 'Job']);
    expect(pod().automountServiceAccountToken).toBe(false);
    expect(pod().enableServiceLinks).toBe(false);
    expect(sidecar().image).toBe('preemptd:0.1.0');
  });

  test('requests the memory the agent uses idle and allows its peak while it uploads a checkpoint', () => {
    const { requests, limits } = sidecar().resources;
    expect(bytes(requests.memory)).toBeGreaterThanOrEqual(IDLE_RSS_BYTES);
    expect(bytes(limits.memory)).toBeGreaterThanOrEqual(PEAK_RSS_BYTES);
    expect(bytes(limits.memory)).toBeGreaterThanOrEqual(bytes(requests.memory));
  });

  test('a pod the cluster disrupts (DisruptionTarget) does not count as a failure of the Job', () => {
    expect(job().spec.podFailurePolicy.rules).toContainEqual({ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] });
    // Kubernetes accepts a podFailurePolicy only with this restart policy.
    expect(pod().restartPolicy).toBe('Never');
  });

  test('shares /run/preemptd with the trainer, where the plan writes its notice file', () => {
    const volume = pod().volumes.find((entry: Manifest) => entry.name === 'notice');
    expect(volume.emptyDir).toBeDefined();
    const mount = (container: Manifest) => container.volumeMounts.find((entry: Manifest) => entry.name === 'notice');
    expect(mount(sidecar())).toEqual({ name: 'notice', mountPath: '/run/preemptd' });
    expect(mount(pod().containers[0])).toEqual({ name: 'notice', mountPath: '/run/preemptd', readOnly: true });
    const config = parse(only(objects, 'ConfigMap').data['config.yaml'] as string) as Manifest;
    expect(config.noticeFile).toMatch(/^\/run\/preemptd\/[^/]+$/);
  });
});
