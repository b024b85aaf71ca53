import { formatLocation } from '../stores/location.js';
import { readPointer } from './repository.js';
import { targetAge } from './restore-marker.js';
import { openRestoreStore, type RestoreOptions } from './restore.js';

export interface NewerVerdict {
  /** Whether the restore should run. */
  restore: boolean;
  /** Why, for a person: what was compared with what. */
  reason: string;
}

/**
 * `restore --latest P --if-newer`: whether the newest complete snapshot under P is newer than
 * what `to` holds (targetAge: the last restore's marker, or a file written since). An empty
 * or missing `to` is always restored; a repository with nothing committed yet has nothing to
 * restore. Reads latest.json only, never a manifest.
 */
export async function latestIsNewer(options: RestoreOptions): Promise<NewerVerdict> {
  const { location, store } = await openRestoreStore(options);
  try {
    const pointer = await readPointer(store, location);
    if (!pointer) return { restore: false, reason: `${formatLocation(location)} has no latest.json yet: nothing to restore` };
    const age = await targetAge(options.to);
    if (age === undefined) return { restore: true, reason: `${options.to} is empty` };
    const latest = Date.parse(pointer.finishedAt);
    const held = new Date(age).toISOString();
    if (Number.isNaN(latest) || latest > age) return { restore: true, reason: `the latest snapshot finished at ${pointer.finishedAt}, ${options.to} holds content from ${held}` };
    return { restore: false, reason: `${options.to} is up to date: it holds content from ${held}, the latest snapshot finished at ${pointer.finishedAt}` };
  } finally {
    await store.close();
  }
}
