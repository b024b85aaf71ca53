import { errorMessage } from '../lib/errors.js';
import { keyFor } from '../stores/location.js';
import type { ManifestEntry } from './manifest.js';
import { MANIFEST_NAME } from './manifest.js';
import type { UploadJob, UploadOutcome } from './upload.js';
import { describeRead, storedFile } from './upload.js';

/**
 * One object per file under the prefix, keeping relative paths. `concurrency` files move
 * at once, each in parallel parts; links are recorded in the manifest only.
 */
export async function uploadFiles(job: UploadJob): Promise<UploadOutcome> {
  const { entries, store, location, stop, progress, gate } = job;
  const files: ManifestEntry[] = [];
  const skipped: UploadOutcome['skipped'] = [];
  let bytesDone = 0;
  let next = 0;

  const worker = async () => {
    while (next < entries.length) {
      const entry = entries[next++]!;
      if (entry.type === 'symlink') {
        files.push({ type: 'symlink', path: entry.name, target: entry.target });
        continue;
      }
      if (entry.name === MANIFEST_NAME) {
        skipped.push({ path: entry.source, reason: `the name ${MANIFEST_NAME} is kept for the manifest` });
        continue;
      }
      const refusal = gate(entry.size);
      if (refusal) {
        skipped.push({ path: entry.source, reason: refusal });
        continue;
      }
      let read;
      try {
        read = await job.reader.open(entry, { exactSize: false, partSize: job.partSize, checksum: job.checksum });
      } catch (error) {
        skipped.push({ path: entry.source, reason: describeRead(error) });
        continue;
      }
      try {
        await store.put(keyFor(location, entry.name), read.parts, { onBytes: progress.add, signal: stop });
        const result = await read.result();
        files.push(storedFile(entry, result, job.checksum));
        bytesDone += result.size;
      } catch (error) {
        skipped.push({ path: entry.source, reason: stop.aborted ? 'cut by the deadline' : `upload failed: ${errorMessage(error)}` });
      }
    }
  };

  await Promise.all(Array.from({ length: Math.min(job.concurrency, Math.max(1, entries.length)) }, worker));
  return { files, skipped, bytesDone, archive: null };
}
