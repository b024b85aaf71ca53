import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { countBytes } from './count.js';
import { formatLocation, type DirectoryLocation } from './location.js';
import { streamOfParts } from './parts.js';
import { abortError, type ObjectStore, type StoreOptions } from './store.js';

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
    if (!path.startsWith(root + sep)) throw new Error(`object key ${JSON.stringify(key)} leaves the directory ${root}`);
    return path;
  };

  return {
    url: formatLocation(location),
    async put(key, parts, { onBytes, signal } = {}) {
      const path = pathOf(key);
      await mkdir(dirname(path), { recursive: true });
      const partial = join(dirname(path), `.${randomBytes(4).toString('hex')}.partial`);
      partials.add(partial);
      try {
        // `flush` fsyncs before close: on NFS the bytes must be on the server before the VM goes.
        await pipeline(streamOfParts(parts), countBytes(onBytes), createWriteStream(partial, { flush: true }), {
          signal: signal ? AbortSignal.any([signal, options.signal]) : options.signal,
        });
        await rename(partial, path);
        partials.delete(partial);
      } catch (error) {
        throw signal?.aborted || options.signal.aborted ? abortError() : error;
      }
    },
    async get(key) {
      const handle = await open(pathOf(key), 'r');
      return handle.createReadStream({ highWaterMark: 1 << 20 });
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
