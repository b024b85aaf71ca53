/**
 * Metadata services keep flat keys (`placement/region`) and list them as directories: the
 * names directly under one, sub-directories with a trailing slash. AWS, Alibaba and GCP
 * list the same way.
 */

/** `a/b` or `a/b/` as the directory prefix `a/b/`; the root stays ''. */
export function directoryPrefix(directory: string): string {
  return directory === '' || directory.endsWith('/') ? directory : `${directory}/`;
}

/** The sorted entries directly under `directory` ('' is the root); undefined when there are none. */
export function directoryEntries(keys: Iterable<string>, directory: string): string[] | undefined {
  const prefix = directoryPrefix(directory);
  const entries = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix) || key === prefix) continue;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf('/');
    entries.add(slash < 0 ? rest : rest.slice(0, slash + 1));
  }
  return entries.size > 0 ? [...entries].sort() : undefined;
}

/** What a flat-keyed metadata tree answers for `item`: its value, or the listing of the directory it names. */
export function itemOrListing(items: Readonly<Record<string, string>>, item: string): string | undefined {
  return items[item] ?? directoryEntries(Object.keys(items), item)?.join('\n');
}
