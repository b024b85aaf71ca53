import { PreemptdError } from '../lib/errors.js';

/**
 * Where a snapshot goes or comes from: `s3://bucket/prefix/`, `gs://bucket/prefix/`,
 * `az://account/container/prefix/` or `file:///dir/prefix/`. Keys inside it are
 * `prefix + relative path`; the prefix is empty or ends with `/`.
 */
export type StoreLocation = BucketLocation | AzureLocation | DirectoryLocation;
export interface BucketLocation {
  scheme: 's3' | 'gs';
  bucket: string;
  prefix: string;
}
export interface AzureLocation {
  scheme: 'az';
  account: string;
  container: string;
  prefix: string;
}
export interface DirectoryLocation {
  scheme: 'file';
  directory: string;
  prefix: '';
}

export const STORE_SCHEMES = ['s3', 'gs', 'az', 'file'] as const;

const EXPECTED = 'expected s3://bucket/prefix/, gs://bucket/prefix/, az://account/container/prefix/ or file:///directory/';

/** Parses a location URL; throws ERR_LOCATION with a message that says what was wrong. */
export function parseLocation(text: string): StoreLocation {
  const match = /^([a-z0-9]+):\/\/(.*)$/i.exec(text.trim());
  if (!match) throw new PreemptdError('ERR_LOCATION', `${EXPECTED}`);
  const scheme = match[1]!.toLowerCase();
  const rest = match[2]!;
  if (scheme === 'file') {
    if (!rest.startsWith('/')) throw new PreemptdError('ERR_LOCATION', 'a file:// location needs an absolute path, as in file:///mnt/nfs/snapshots/');
    let directory: string;
    try {
      directory = decodeURIComponent(rest.replace(/\/+$/, '')) || '/';
    } catch {
      throw new PreemptdError('ERR_LOCATION', `path ${JSON.stringify(rest)} has a % not followed by two hex digits (write %25 for a %): ${EXPECTED}`);
    }
    return { scheme: 'file', directory, prefix: '' };
  }
  const [first = '', ...others] = rest.split('/');
  if (scheme === 's3' || scheme === 'gs') {
    if (!/^[a-z0-9][a-z0-9._-]{2,62}$/i.test(first)) throw new PreemptdError('ERR_LOCATION', `bucket name ${JSON.stringify(first)} is not valid: ${EXPECTED}`);
    return { scheme, bucket: first, prefix: normalisePrefix(others.join('/')) };
  }
  if (scheme === 'az') {
    const [container = '', ...path] = others;
    if (!/^[a-z0-9]{3,24}$/.test(first)) throw new PreemptdError('ERR_LOCATION', `storage account ${JSON.stringify(first)} is not valid (3-24 lowercase letters and digits): ${EXPECTED}`);
    if (!/^[a-z0-9$][a-z0-9-]{1,62}$/.test(container)) throw new PreemptdError('ERR_LOCATION', `container ${JSON.stringify(container)} is not valid: ${EXPECTED}`);
    return { scheme: 'az', account: first, container, prefix: normalisePrefix(path.join('/')) };
  }
  throw new PreemptdError('ERR_LOCATION', `scheme ${JSON.stringify(`${scheme}://`)} is not supported: ${EXPECTED}`);
}

function normalisePrefix(path: string): string {
  const trimmed = path.replace(/^\/+/, '').replace(/\/{2,}/g, '/');
  return trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}

/** The location as a URL again (no credentials are ever part of it). */
export function formatLocation(location: StoreLocation): string {
  switch (location.scheme) {
    case 'file':
      return `file://${location.directory.replace(/\/$/, '')}/`;
    case 'az':
      return `az://${location.account}/${location.container}/${location.prefix}`;
    default:
      return `${location.scheme}://${location.bucket}/${location.prefix}`;
  }
}

/** Joins a relative name under a location's prefix. */
export function keyFor(location: StoreLocation, name: string): string {
  return `${location.prefix}${name}`;
}
