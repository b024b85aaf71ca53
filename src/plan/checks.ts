import { lookup } from 'node:dns/promises';
import { errorMessage } from '../errors.js';
import type { CheckResult } from './step.js';

/**
 * Whether the host of `url` resolves, as a check line. Only the host is shown: the rest of
 * a webhook URL is a credential. Resolving sends nothing to the host itself.
 */
export async function hostResolves(url: string): Promise<CheckResult> {
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
