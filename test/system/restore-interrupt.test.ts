import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/cli.js';

/**
 * Just enough S3 for `restore`: GetObject of manifest.json, and of one 1 MiB object whose
 * first 64 KiB are sent and the rest held back (a stalled download). No signature check.
 */
async function startStallingS3(): Promise<{ endpoint: string; server: Server }> {
  const size = 1024 * 1024;
  const manifest = {
    version: 1, mode: 'files', checksum: 'crc32', archive: null, notice: {}, host: {}, startedAt: '', finishedAt: '', deadline: '',
    complete: true, bytesWanted: size, bytesDone: size, skipped: [], excluded: 0,
    files: [{ type: 'file', path: 'ckpt/model.pt', size, mtime: '2026-01-01T00:00:00.000Z', mode: 0o644, crc32: '00000000' }],
  };
  const server = createServer((request, response) => {
    const path = new URL(request.url!, 'http://x').pathname;
    if (path === '/snapshots/p/manifest.json') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(manifest));
    } else if (path === '/snapshots/p/ckpt/model.pt') {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      response.write(Buffer.alloc(64 * 1024));
    } else {
      response.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function partialFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((name) => name.endsWith('.partial'));
}

test('one Ctrl-C during a stalled download stops it, removes the partial file and exits non-zero with a clear line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'restore-interrupt-'));
  const { endpoint, server } = await startStallingS3();
  const out = join(dir, 'out');
  const child = spawn(process.execPath, [CLI, 'restore', '--from', 's3://snapshots/p/', '--to', out, '--endpoint', endpoint, '--force-path-style', '--region', 'us-east-1'], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor('a .partial file of the stalled download', async () => ((await partialFiles(out)).length ? true : undefined));

    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(resolve, 15_000, 'still running 15 s after one SIGINT').unref())]);

    expect(code).toBe(1);
    expect(output).toContain(`preemptd: restore into ${out} interrupted: downloads stopped, partial files removed`);
    expect(await partialFiles(out)).toEqual([]);
  } finally {
    child.kill('SIGKILL');
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
