import { stat } from 'node:fs/promises';
import { PreemptdError, errorMessage } from '../../lib/errors.js';
import type { SnapshotOptions } from '../../snapshots/options.js';
import { fillPlaceholders, PLACEHOLDERS, type PlaceholderValues } from '../../snapshots/placeholders.js';
import { parseLocation, type StoreLocation } from '../../stores/location.js';
import { directoryWritable } from '../checks.js';
import type { CheckResult } from '../types.js';

/** Credential chains may ask a metadata server or a token endpoint: bound each. */
const CREDENTIALS_TIMEOUT_MS = 5_000;
const GLOB = /[*?[\]{}]/;

async function pathExists(path: string): Promise<CheckResult> {
  const what = `path ${path}`;
  if (GLOB.test(path)) return { what, ok: true, reason: 'a pattern: matched when the step runs' };
  try {
    const info = await stat(path);
    return { what, ok: true, reason: info.isDirectory() ? 'directory exists' : `file exists (${info.size} bytes)` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { what, ok: false, reason: code === 'ENOENT' ? 'does not exist (yet?)' : `cannot be read (${code ?? errorMessage(error)})` };
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PreemptdError('ERR_STORE', `${what}: no answer within ${CREDENTIALS_TIMEOUT_MS / 1000} s`)), CREDENTIALS_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves credentials the way the store will, without reading or writing any object. */
async function credentialsResolve(location: StoreLocation, options: SnapshotOptions): Promise<string> {
  switch (location.scheme) {
    case 's3': {
      const { S3Client } = await import('@aws-sdk/client-s3');
      const client = new S3Client({ ...(options.region ? { region: options.region } : {}), ...(options.endpoint ? { endpoint: options.endpoint } : {}) });
      try {
        const region = await withTimeout(client.config.region(), 'region');
        await withTimeout(client.config.credentials(), 'AWS credentials');
        return `AWS credentials resolve (SDK default chain), region ${region}`;
      } finally {
        client.destroy();
      }
    }
    case 'gs': {
      if (options.endpoint) return 'emulator endpoint: no credentials used';
      const { Storage } = await import('@google-cloud/storage');
      await withTimeout(new Storage().authClient.getAccessToken(), 'Google credentials');
      return 'Google credentials resolve (application default credentials)';
    }
    case 'az': {
      const env = process.env;
      const named = ['AZURE_STORAGE_CONNECTION_STRING', 'AZURE_STORAGE_KEY', 'AZURE_STORAGE_SAS_TOKEN'].find((name) => env[name]);
      if (named) return `${named} is set`;
      const { DefaultAzureCredential } = await import('@azure/identity');
      await withTimeout(new DefaultAzureCredential().getToken('https://storage.azure.com/.default'), 'Azure credentials');
      return 'Azure credentials resolve (DefaultAzureCredential)';
    }
    case 'file':
      return '';
  }
}

/**
 * `check` of the snapshot step: its paths exist, and its destination could be written:
 * a directory is writable, a bucket's credentials resolve. Nothing is uploaded.
 */
export async function checkSnapshotStep(options: SnapshotOptions): Promise<CheckResult[]> {
  const results = await Promise.all(options.paths.map(pathExists));
  const sample = Object.fromEntries(PLACEHOLDERS.map((name) => [name, name])) as PlaceholderValues;
  const location = parseLocation(fillPlaceholders(options.to, sample));
  const what = `destination ${options.to}`;
  if (location.scheme === 'file') results.push(await directoryWritable(location.directory, what));
  else {
    try {
      results.push({ what, ok: true, reason: await credentialsResolve(location, options) });
    } catch (error) {
      results.push({ what, ok: false, reason: `credentials do not resolve: ${errorMessage(error)}` });
    }
  }
  return results;
}
