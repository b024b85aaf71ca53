import { lstat, mkdir, open, opendir, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PreemptdError } from '../lib/errors.js';
import { formatLocation, type DirectoryLocation } from './location.js';
import { abortError, callSignal, type ObjectInfo, type ObjectStore, type StoreOptions } from './types.js';

/**
 * A directory (local disk, NFS, a mounted bucket). Each object is written to a hidden
 * `.partial` file, flushed to stable storage and renamed, so a reader never sees half a file
 * and a cut upload leaves nothing behind. Reads `signal` from the options, nothing else.
 * `stat`, `list` and `delete` never follow a link: a link is not an object, and a folder
 * reached through one is neither listed nor deleted from, so nothing outside the directory
 * is ever touched.
 */
/** The hidden name a put writes to before its rename. */
const PARTIAL = /^\.[0-9a-f]{8}\.partial$/;

export function openFileStore(location: DirectoryLocation, options: StoreOptions): ObjectStore {
  const root = resolve(location.directory);
  const partials = new Set<string>();

  const pathOf = (key: string): string => {
    const path = resolve(join(root, key));
    if (!path.startsWith(root + sep)) throw new PreemptdError('ERR_STORE', `object key ${JSON.stringify(key)} leaves the directory ${root}`);
    return path;
  };

  /** Whether every folder of `key` under the root is a folder, not a link. */
  const isRealFolderPath = async (folders: string): Promise<boolean> => {
    let path = root;
    for (const name of folders.split('/')) {
      path = join(path, name);
      const info = await lstat(path).catch(() => undefined);
      if (!info?.isDirectory()) return false;
    }
    return true;
  };

  const stat = async (key: string): Promise<ObjectInfo | undefined> => {
    const path = pathOf(key);
    const folders = relative(root, dirname(path));
    if (folders !== '' && !(await isRealFolderPath(folders.split(sep).join('/')))) return undefined;
    const info = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw error;
    });
    return info?.isFile() ? { key, size: info.size, modified: info.mtimeMs } : undefined;
  };

  /** Regular files under `folder` whose key starts with `prefix`, never links: the objects, or (`partial`) the `.partial` files. */
  async function* walkFiles(folder: string, prefix: string, partial: boolean): AsyncGenerator<ObjectInfo> {
    const entries = await opendir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    for await (const entry of entries) {
      const path = join(folder, entry.name);
      const key = relative(root, path).split(sep).join('/');
      if (entry.isDirectory() && (key.startsWith(prefix) || prefix.startsWith(`${key}/`))) yield* walkFiles(path, prefix, partial);
      else if (entry.isFile() && key.startsWith(prefix) && PARTIAL.test(entry.name) === partial) {
        const info = await lstat(path).catch(() => undefined);
        if (info?.isFile()) yield { key, size: info.size, modified: info.mtimeMs };
      }
    }
  }

  /** Starts in the deepest folder the prefix names whole; keys are filtered by the rest. */
  async function* walkFrom(prefix: string, partial: boolean): AsyncGenerator<ObjectInfo> {
    const start = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    if (start !== '' && !(await isRealFolderPath(start))) return;
    yield* walkFiles(start === '' ? root : pathOf(start), prefix, partial);
  }

  return {
    url: formatLocation(location),
    async put(key, parts, { onBytes, signal } = {}) {
      const stops = callSignal(options.signal, signal);
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
    async get(key, range) {
      const handle = await open(pathOf(key), 'r');
      const bounds = range ? { start: range.offset, end: range.offset + range.length - 1 } : {};
      return handle.createReadStream({ highWaterMark: 1 << 20, ...bounds });
    },
    async getInto(key, range, into) {
      const handle = await open(pathOf(key), 'r');
      try {
        const start = range?.offset ?? 0;
        const end = range ? start + range.length : Infinity;
        let length = 0;
        while (length < into.length) {
          const { bytesRead } = await handle.read(into, length, Math.min(into.length - length, end - start - length), start + length);
          if (bytesRead === 0) return { length, more: false };
          length += bytesRead;
        }
        // Full: one byte more, within the range, says the object had more than fit.
        const more = start + length < end && (await handle.read(Buffer.alloc(1), 0, 1, start + length)).bytesRead > 0;
        return { length, more };
      } finally {
        await handle.close();
      }
    },
    has: async (key) => (await stat(key)) !== undefined,
    stat,
    list: (prefix) => walkFrom(prefix, false),
    leftovers: (prefix) => walkFrom(prefix, true),
    async delete(keys, signal) {
      for (const key of keys) {
        signal?.throwIfAborted();
        if (!(await stat(key))) continue;
        await rm(pathOf(key), { force: true });
      }
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
