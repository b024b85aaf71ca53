import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PreemptdError } from '../lib/errors.js';
import { formatLocation, type DirectoryLocation } from './location.js';
import { abortError, type ObjectStore, type StoreOptions } from './types.js';

/**
 * A directory (local disk, NFS, a mounted bucket). Each object is written to a hidden
 * `.partial` file, flushed to stable storage and renamed, so a reader never sees half a file
 * and a cut upload leaves nothing behind. Reads `signal` from the options, nothing else.
 */
export function openFileStore(location: DirectoryLocation, options: StoreOptions): ObjectStore {
  const root = resolve(location.directory);
  const partials = new Set<string>();

  const pathOf = (key: string): string => {
    const path = resolve(join(root, key));
    if (!path.startsWith(root + sep)) throw new PreemptdError('ERR_STORE', `object key ${JSON.stringify(key)} leaves the directory ${root}`);
    return path;
  };

  return {
    url: formatLocation(location),
    async put(key, parts, { onBytes, signal } = {}) {
      const stops = signal ? AbortSignal.any([signal, options.signal]) : options.signal;
      const path = pathOf(key);
      const partial = join(dirname(path), `.${randomBytes(4).toString('hex')}.partial`);
      partials.add(partial);
      // The folder is there for most objects (a dedup repository's chunks/ab/): made only when
      // missing, which saved the main thread a tenth of its time on the chunking bench.
      const handle = await open(partial, 'w').catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
        await mkdir(dirname(path), { recursive: true });
        return open(partial, 'w');
      });
      try {
        // Part by part, each buffer handed back once written: no stream between the reading
        // thread's memory and the file.
        for await (const part of parts) {
          if (stops.aborted) throw abortError();
          let written = 0;
          while (written < part.bytes.length) written += (await handle.write(part.bytes, written)).bytesWritten;
          onBytes?.(part.bytes.length);
          part.release?.();
        }
        // On NFS the bytes must be on the server before the VM goes.
        await handle.sync();
      } catch (error) {
        await handle.close();
        throw stops.aborted ? abortError() : error;
      }
      await handle.close();
      await rename(partial, path);
      partials.delete(partial);
    },
    async get(key) {
      const handle = await open(pathOf(key), 'r');
      return handle.createReadStream({ highWaterMark: 1 << 20 });
    },
    async has(key) {
      return stat(pathOf(key)).then(
        (info) => info.isFile(),
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return false;
          throw error;
        },
      );
    },
    async cleanup() {
      const left: string[] = [];
      for (const partial of partials) {
        await rm(partial, { force: true }).then(
          () => partials.delete(partial),
          () => left.push(partial),
        );
      }
      return left;
    },
    async close() {},
  };
}
