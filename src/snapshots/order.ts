import type { Priority } from './options.js';
import type { FoundEntry } from './walk.js';

/** Links first (they cost nothing), then files in the configured priority. */
export function orderEntries(entries: readonly FoundEntry[], priority: Priority): FoundEntry[] {
  const rank = (entry: FoundEntry): number => {
    if (entry.type === 'symlink') return -Infinity;
    switch (priority) {
      case 'newest':
        return -entry.mtimeMs;
      case 'oldest':
        return entry.mtimeMs;
      case 'smallest':
        return entry.size;
      case 'largest':
        return -entry.size;
      case 'path':
        return 0;
    }
  };
  return [...entries].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
