import { keyFor } from '../stores/location.js';
import { MANIFEST_NAME } from './manifest.js';
import { storedFile, storeEachFile, uploadFailure, type UploadJob, type UploadOutcome } from './upload.js';

/**
 * One object per file under the prefix, keeping relative paths. `concurrency` files move
 * at once, each in parallel parts; links are recorded in the manifest only.
 */
export function uploadFiles(job: UploadJob): Promise<UploadOutcome> {
  const { store, location, stop, progress, gate } = job;
  return storeEachFile(job, {
    refuse: (entry) => (entry.name === MANIFEST_NAME ? `the name ${MANIFEST_NAME} is kept for the manifest` : gate(entry.size)),
    async store(entry, read) {
      await store.put(keyFor(location, entry.name), read.parts, { onBytes: progress.add, signal: stop });
      return storedFile(entry, await read.result(), job.checksum);
    },
    failure: (error) => uploadFailure(stop, error),
  });
}
