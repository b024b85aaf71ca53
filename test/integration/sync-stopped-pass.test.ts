import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { TransferProgress } from '../../src/snapshots/progress.js';
import { FileReader } from '../../src/snapshots/read.js';
import { scanFiles } from '../../src/snapshots/sync/scan.js';
import { TokenBucket } from '../../src/snapshots/sync/token-bucket.js';
import { walkPaths } from '../../src/snapshots/walk.js';
import { openFileStore } from '../../src/stores/file.js';
import type { Part } from '../../src/stores/parts.js';
import type { ObjectStore } from '../../src/stores/types.js';
import { TestResources } from '../helpers/resources.js';
import { testBytes } from '../helpers/seed.js';
import { syncTree } from '../helpers/sync-daemon.js';

const resources = new TestResources('preemptd-sync-stopped-pass-');
afterAll(() => resources.cleanUp());

/** Every file under `folder` whose name ends in `.partial`. */
async function partialFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.partial')).map((entry) => entry.name);
}

test('a background pass stopped in the middle of a put (a notice taking the sync over) leaves no .partial file in a file:// repository', async () => {
  const where = syncTree(resources);
  await writeFile(join(where.ckpt, 'model.pt'), testBytes(4 * 1024 * 1024));
  const stop = new AbortController();
  const store = openFileStore({ scheme: 'file', directory: where.repo, prefix: '' }, { partSize: 8 << 20, queueSize: 4, concurrency: 2, signal: new AbortController().signal, log: silentLogger() });
  // The first put has opened its .partial file when it asks for its bytes: the pass stops then.
  let puts = 0;
  const stopping: ObjectStore = {
    ...store,
    put: (key, parts, options) =>
      store.put(
        key,
        (async function* stopFirst(): AsyncGenerator<Part> {
          if ((puts += 1) === 1) stop.abort();
          yield* parts;
        })(),
        options,
      ),
  };
  const reader = FileReader.start();
  try {
    const { entries } = await walkPaths([where.ckpt], [], new AbortController().signal);
    await scanFiles(entries, new Map(), new TransferProgress(0), { store: stopping, location: { scheme: 'file', directory: where.repo, prefix: '' }, reader, bucket: new TokenBucket(null), signal: stop.signal }).catch(() => undefined);
  } finally {
    await reader.close();
    await store.close();
  }
  expect(puts).toBeGreaterThan(0);
  expect(await partialFiles(where.repo)).toEqual([]);
});
