import { lookup } from 'node:dns/promises';
import { access, constants, stat } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import type { CheckResult } from './types.js';

/**
 * Whether the host of `url` resolves, as a check line. Only the host is shown: the rest of
 * a webhook URL is a credential. Resolving sends nothing to the host itself.
 */
async function hostResolves(url: string): Promise<CheckResult> {
  const { hostname, host } = new URL(url);
  const what = `host ${host}`;
  try {
    const addresses = await lookup(hostname.replace(/^\[|\]$/g, ''), { all: true });
    return { what, ok: true, reason: `resolves to ${addresses.map((entry) => entry.address).join(', ')}` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { what, ok: false, reason: `does not resolve (${code ?? errorMessage(error)}): check the name and this machine's DNS` };
  }
}

/** Whether the hosts of `urls` resolve, one line per host: URLs on one host are looked up once. */
export function hostsResolve(urls: string[]): Promise<CheckResult[]> {
  const byHost = new Map(urls.map((url) => [new URL(url).host, url]));
  return Promise.all([...byHost.values()].map(hostResolves));
}

/** The nearest existing directory at or above `path`. */
async function nearestExisting(path: string): Promise<string> {
  let existing = path;
  while (!(await stat(existing).then(() => true, () => false))) {
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  return existing;
}

/** Whether preemptd could write in `directory`, or create it under a writable parent. */
export async function directoryWritable(directory: string, what = `directory ${directory}`): Promise<CheckResult> {
  const existing = await nearestExisting(directory);
  try {
    await access(existing, constants.W_OK | constants.X_OK);
  } catch {
    const uid = process.getuid?.();
    return { what, ok: false, reason: `${existing} is not writable${uid === undefined ? '' : ` by uid ${uid}`}` };
  }
  return { what, ok: true, reason: existing === directory ? 'is writable' : `does not exist yet; it will be created under ${existing}` };
}

/** Whether `program` would start: a path must be executable, a bare name found on PATH. */
export async function programFound(program: string, cwd: string | undefined): Promise<CheckResult> {
  const what = `program ${program}`;
  const executable = (path: string) => access(path, constants.X_OK).then(() => true, () => false);
  if (program.includes('/')) {
    const path = isAbsolute(program) ? program : join(cwd ?? process.cwd(), program);
    return (await executable(path)) ? { what, ok: true, reason: 'is executable' } : { what, ok: false, reason: `${path} does not exist or is not executable` };
  }
  for (const directory of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const path = join(directory, program);
    if (await executable(path)) return { what, ok: true, reason: `found at ${path}` };
  }
  return { what, ok: false, reason: 'not found on PATH' };
}

export async function directoryExists(directory: string): Promise<CheckResult> {
  const what = `directory ${directory}`;
  const info = await stat(directory).catch(() => undefined);
  if (info?.isDirectory()) return { what, ok: true, reason: 'exists' };
  return { what, ok: false, reason: info ? 'is not a directory' : 'does not exist' };
}
