import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import YAML from 'yaml';
import { KubernetesError } from './errors.js';

/** Where the kubelet mounts a pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How to reach the API server and who to be there. */
export interface KubeAccess {
  /** `https://10.96.0.1:443`, or the kubeconfig's server. */
  server: string;
  /** PEM of the CA that signed the server's certificate; undefined: the system's CAs. */
  ca?: string;
  insecureSkipTlsVerify?: boolean;
  clientCertificate?: string;
  clientKey?: string;
  /** The bearer token for the next request: a token file is re-read every time, as the kubelet rotates it. */
  token(): Promise<string | undefined>;
  /** Where the credentials came from, for messages: `in-cluster service account`, `kubeconfig /etc/...`. */
  source: string;
}

export interface AccessOptions {
  /** A kubeconfig file (k3s, a VM outside the cluster); without it: in-cluster. */
  kubeconfig?: string;
  env?: NodeJS.ProcessEnv;
  serviceAccountDir?: string;
}

/** Reads a token file on every call; a missing one is a clear error naming it. */
function tokenFile(path: string, hint: string): () => Promise<string> {
  return async () => {
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch (error) {
      throw new KubernetesError(`no token at ${path} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): ${hint}`);
    }
  };
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new KubernetesError(`cannot read ${what} ${path} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

async function inCluster(env: NodeJS.ProcessEnv, dir: string): Promise<KubeAccess> {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) {
    throw new KubernetesError('not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set): run preemptd in a pod with a service account, or give the step kubeconfig: /path');
  }
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: await readText(join(dir, 'ca.crt'), 'the service-account CA'),
    token: tokenFile(join(dir, 'token'), 'mount a service-account token (automountServiceAccountToken: true) or give the step kubeconfig: /path'),
    source: 'in-cluster service account',
  };
}

type Named<T> = Array<{ name: string } & Record<string, T | undefined>>;

/** The kubeconfig's current context: its cluster's server and CA, its user's token or client certificate. */
async function fromKubeconfig(path: string): Promise<KubeAccess> {
  let config: { 'current-context'?: string; contexts?: Named<{ cluster: string; user: string }>; clusters?: Named<Record<string, string | boolean>>; users?: Named<Record<string, unknown>> };
  try {
    config = YAML.parse(await readText(path, 'kubeconfig')) ?? {};
  } catch (error) {
    if (error instanceof KubernetesError) throw error;
    throw new KubernetesError(`kubeconfig ${path} is not YAML: ${(error as Error).message}`);
  }
  const contextName = config['current-context'];
  const context = config.contexts?.find((entry) => entry.name === contextName)?.context;
  if (!context) throw new KubernetesError(`kubeconfig ${path} has no current-context (or no context named ${contextName ?? '(none)'}): expected one naming a cluster and a user`);
  const cluster = config.clusters?.find((entry) => entry.name === context.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== 'string') throw new KubernetesError(`kubeconfig ${path}: cluster ${context.cluster} has no server`);
  const user = (config.users?.find((entry) => entry.name === context.user)?.user ?? {}) as Record<string, string | undefined>;
  if (user.exec || user['auth-provider']) {
    throw new KubernetesError(`kubeconfig ${path}: user ${context.user} uses a credential plugin, which preemptd does not run; give it a token, tokenFile or client certificate`);
  }
  const relative = (file: string): string => (isAbsolute(file) ? file : join(dirname(path), file));
  const pem = async (data: unknown, file: unknown, what: string): Promise<string | undefined> => {
    if (typeof data === 'string') return Buffer.from(data, 'base64').toString('utf8');
    return typeof file === 'string' ? readText(relative(file), what) : undefined;
  };
  const staticToken = user.token;
  const fileToken = user.tokenFile ? tokenFile(relative(user.tokenFile), 'fix tokenFile in the kubeconfig') : undefined;
  const ca = await pem(cluster['certificate-authority-data'], cluster['certificate-authority'], 'certificate authority');
  const clientCertificate = await pem(user['client-certificate-data'], user['client-certificate'], 'client certificate');
  const clientKey = await pem(user['client-key-data'], user['client-key'], 'client key');
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ...(ca ? { ca } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(clientCertificate ? { clientCertificate } : {}),
    ...(clientKey ? { clientKey } : {}),
    token: async () => staticToken ?? (await fileToken?.()),
    source: `kubeconfig ${path}`,
  };
}

/** API access from a kubeconfig when given, else from the pod's service account and the service env. */
export function resolveAccess(options: AccessOptions = {}): Promise<KubeAccess> {
  return options.kubeconfig ? fromKubeconfig(options.kubeconfig) : inCluster(options.env ?? process.env, options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
}
