import { access, constants, stat } from 'node:fs/promises';
import type { SyncEntry } from '../../config/sync-schema.js';
import { PreemptdError, errorMessage } from '../../lib/errors.js';
import type { SnapshotOptions } from '../../snapshots/options.js';
import { fillPlaceholders, PLACEHOLDERS, type PlaceholderValues } from '../../snapshots/placeholders.js';
import { parseLocation, type StoreLocation } from '../../stores/location.js';
import { directoryWritable } from '../checks.js';
import type { CheckContext, CheckResult } from '../types.js';

/** Credential chains may ask a metadata server or a token endpoint: bound each. */
const CREDENTIALS_TIMEOUT_MS = 5_000;
const GLOB = /[*?[\]{}]/;

/** Whether `path` exists and this process (the service's user, under `check --as-user`) can read it. */
async function pathReadable(path: string): Promise<CheckResult> {
  const what = `path ${path}`;
  if (GLOB.test(path)) return { what, ok: true, reason: 'a pattern: matched when the step runs' };
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { what, ok: false, reason: code === 'ENOENT' ? 'does not exist (yet?)' : `cannot be read (${code ?? errorMessage(error)})` };
  }
  const kind = info.isDirectory() ? 'directory' : 'file';
  // A directory is read by listing it and entering it.
  const readable = await access(path, info.isDirectory() ? constants.R_OK | constants.X_OK : constants.R_OK).then(() => true, () => false);
  if (!readable) return { what, ok: false, reason: `${kind} exists but is not readable${describeUid()}` };
  return { what, ok: true, reason: info.isDirectory() ? 'directory exists' : `file exists (${info.size} bytes)` };
}

function describeUid(): string {
  const uid = process.getuid?.();
  return uid === undefined ? '' : ` by uid ${uid}`;
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PreemptdError('ERR_STORE', `${what}: no answer within ${CREDENTIALS_TIMEOUT_MS / 1000} s`)), CREDENTIALS_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The region an S3 upload would use: the step's own, else the instance's (the notice
 * carries the same), else the SDK's chain (AWS_REGION, the config file); undefined when
 * none knows yet, for the notice's region is then used at run time.
 */
async function s3Region(options: StoreSettings, instance: CheckContext['instance']): Promise<{ region: string; from: string } | undefined> {
  if (options.region) return { region: options.region, from: 'set in the step' };
  const fromInstance = (await instance)?.region;
  if (fromInstance) return { region: fromInstance, from: "this instance's, as the notice will say" };
  const { S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({});
  try {
    return { region: await withTimeout(client.config.region(), 'region'), from: 'from the SDK chain' };
  } catch {
    return undefined;
  } finally {
    client.destroy();
  }
}

/** Resolves credentials the way the store will, without reading or writing any object. */
async function credentialsResolve(location: StoreLocation, options: StoreSettings, context: CheckContext): Promise<string> {
  switch (location.scheme) {
    case 's3': {
      const { S3Client } = await import('@aws-sdk/client-s3');
      const region = await s3Region(options, context.instance);
      // Credentials resolve without a region; one is needed only to build the client.
      const client = new S3Client({ region: region?.region ?? 'us-east-1', ...(options.endpoint ? { endpoint: options.endpoint } : {}) });
      try {
        await withTimeout(client.config.credentials(), 'AWS credentials');
        const where = region ? `region ${region.region} (${region.from})` : "no region known here: the notice's region is used at run time (or set region: in the step)";
        return `AWS credentials resolve (SDK default chain), ${where}`;
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

/** What a destination's check reads of a snapshot step's options or a sync's entry. */
type StoreSettings = Pick<SyncEntry, 'to' | 'region' | 'endpoint'>;

/** Whether `to` could be written: a directory is writable, a bucket's credentials resolve. Nothing is uploaded. */
async function checkDestination(settings: StoreSettings, context: CheckContext): Promise<CheckResult> {
  const sample = Object.fromEntries(PLACEHOLDERS.map((name) => [name, name])) as PlaceholderValues;
  const location = parseLocation(fillPlaceholders(settings.to, sample));
  const what = `destination ${settings.to}`;
  if (location.scheme === 'file') return directoryWritable(location.directory, what);
  try {
    return { what, ok: true, reason: await credentialsResolve(location, settings, context) };
  } catch (error) {
    return { what, ok: false, reason: `credentials do not resolve: ${errorMessage(error)}` };
  }
}

/**
 * `check` of the snapshot step: its paths exist and are readable, and its destination could
 * be written. A step tied to a sync is checked with the sync (checkSync).
 */
export async function checkSnapshotStep(options: SnapshotOptions, context: CheckContext): Promise<CheckResult[]> {
  if (options.sync !== null) return [{ what: `sync ${options.sync}`, ok: true, reason: `its paths and destination are checked under "sync ${options.sync}"` }];
  return [...(await Promise.all(options.paths.map(pathReadable))), await checkDestination(options, context)];
}

/** `check` of one `sync:` entry, as a snapshot step's: its paths exist and are readable, its destination could be written. */
export async function checkSync(entry: SyncEntry, context: CheckContext): Promise<CheckResult[]> {
  return [...(await Promise.all(entry.paths.map(pathReadable))), await checkDestination(entry, context)];
}
