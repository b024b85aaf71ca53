import type { z } from 'zod';
import { PreemptdError, errorMessage } from '../lib/errors.js';
import { formatLocation, keyFor, type StoreLocation } from '../stores/location.js';
import type { ObjectStore } from '../stores/types.js';

/**
 * A manifest or pointer larger than this is refused unread, and a writer refuses to store one
 * (repository.ts writeJson): a dedup manifest takes about 112 bytes per chunk, so this holds
 * about 2.4 million chunks, some 300 GB of files at 128 KiB per chunk. Reading one that large
 * takes about 1 GB of memory (the text, then the parsed entries).
 */
export const STORED_JSON_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Reads `name` under `location` as JSON of `schema`. It is data from the store, trusted for
 * nothing: too large, not JSON or not of the schema is an ERR_RESTORE naming the object and
 * what was wrong.
 */
export async function readStoredJson<Schema extends z.ZodType>(store: ObjectStore, location: StoreLocation, name: string, schema: Schema, what: string): Promise<z.output<Schema>> {
  const where = `${formatLocation(location)}${name}`;
  let text: string;
  try {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of await store.get(keyFor(location, name))) {
      bytes += (chunk as Buffer).length;
      if (bytes > STORED_JSON_MAX_BYTES) throw new PreemptdError('ERR_RESTORE', `${where} is larger than ${STORED_JSON_MAX_BYTES / 1024 / 1024} MiB: not ${what}`);
      chunks.push(chunk as Buffer);
    }
    text = Buffer.concat(chunks).toString('utf8');
  } catch (error) {
    if (error instanceof PreemptdError) throw error;
    throw new PreemptdError('ERR_RESTORE', `cannot read ${where}: ${errorMessage(error)}`, { cause: error });
  }
  let parsed;
  try {
    parsed = schema.safeParse(JSON.parse(text));
  } catch {
    throw new PreemptdError('ERR_RESTORE', `${where} is not JSON`);
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PreemptdError('ERR_RESTORE', `${where} is not ${what}: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}
