import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';

/** Azurite's fixed development account; it checks SharedKey signatures made with this key. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  /** The store's `endpoint`: http://127.0.0.1:PORT/devstoreaccount1. */
  endpoint: string;
  /** A client for assertions, signed with the account key. */
  service: BlobServiceClient;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);

/**
 * Starts Azurite's blob service (Microsoft's emulator, a devDependency) as a child process on
 * 127.0.0.1 and a port the system picks, data in memory, telemetry off (it would otherwise
 * reach out to Microsoft), and creates `containers`. Resolves once it listens.
 */
export async function startAzurite(containers: string[] = []): Promise<AzuriteServer> {
  const main = join(dirname(require.resolve('azurite/package.json')), 'dist/src/blob/main.js');
  const cwd = await mkdtemp(join(tmpdir(), 'azurite-'));
  const args = ['--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--disableTelemetry', '--skipApiVersionCheck', '--silent'];
  const child = spawn(process.execPath, [main, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (data: Buffer) => {
      output += data.toString();
      const listening = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (listening) resolve(Number(listening[1]));
    });
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    child.once('exit', (code) => reject(new Error(`azurite exited (${code}) before listening: ${output}`)));
  });
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  const close = async () => {
    if (child.exitCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    await rm(cwd, { recursive: true, force: true });
  };
  try {
    for (const name of containers) await service.getContainerClient(name).create();
  } catch (error) {
    await close();
    throw error;
  }
  return { endpoint, service, close };
}
