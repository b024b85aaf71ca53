import { createHash } from 'node:crypto';
import { directoryEntries, directoryPrefix } from './directory.js';

/** One answer of the GCE metadata server, before the headers every answer carries. */
export interface GcpAnswer {
  status: number;
  body: string;
  contentType: 'application/text' | 'application/json';
  etag?: string;
  /** Where a 301 points. */
  location?: string;
}

/** `machine-type` as recursive JSON names it: `machineType`. */
function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

/** A value in recursive JSON: digits are numbers (ids, project numbers), anything else a string. */
function jsonValue(value: string): string {
  return /^\d+$/.test(value) ? value : JSON.stringify(value);
}

function jsonTree(values: ReadonlyMap<string, string>, prefix: string): string {
  const members = (directoryEntries(values.keys(), prefix) ?? []).map((entry) => {
    const value = entry.endsWith('/') ? jsonTree(values, prefix + entry) : jsonValue(values.get(prefix + entry)!);
    return `${JSON.stringify(camelCase(entry.replace(/\/$/, '')))}:${value}`;
  });
  return `{${members.join(',')}}`;
}

/** `?recursive=true&alt=text`: one `path value` line per key below the directory. */
function textTree(values: ReadonlyMap<string, string>, prefix: string): string {
  const lines = [...values.keys()].filter((key) => key.startsWith(prefix)).sort().map((key) => `${key.slice(prefix.length)} ${values.get(key)}`);
  return `${lines.join('\n')}\n`;
}

function etagOf(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

/**
 * A directory as the metadata server lists it: `instance/` lists its entries as text (JSON
 * with `alt=json`); `?recursive=true` gives the whole subtree as JSON with camelCase keys
 * (`alt=text`: `path value` lines); `instance` without the slash is moved to `instance/`
 * unless recursive. Undefined when nothing lies under `key`.
 */
export function directoryAnswer(values: ReadonlyMap<string, string>, basePath: string, key: string, query: URLSearchParams): GcpAnswer | undefined {
  const prefix = directoryPrefix(key);
  const entries = directoryEntries(values.keys(), prefix);
  if (entries === undefined) return undefined;
  const alt = query.get('alt');
  const answer = (body: string, contentType: GcpAnswer['contentType']): GcpAnswer => ({ status: 200, body, contentType, etag: etagOf(body) });
  if (query.get('recursive') === 'true') {
    return alt === 'text' ? answer(textTree(values, prefix), 'application/text') : answer(jsonTree(values, prefix), 'application/json');
  }
  if (prefix !== key) {
    const search = query.size > 0 ? `?${query.toString()}` : '';
    return { status: 301, body: 'Moved Permanently\n', contentType: 'application/text', location: `${basePath}${prefix}${search}` };
  }
  return alt === 'json' ? answer(JSON.stringify(entries), 'application/json') : answer(`${entries.join('\n')}\n`, 'application/text');
}
