import { lstat, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { readRegularFile } from '../lib/read-regular-file.js';

/**
 * The file a restore leaves in `--to` once every file is verified: which snapshot it restored
 * and when that snapshot finished. `restore --if-newer` compares it with latest.json.
 */
export const MARKER_NAME = '.preemptd-restore.json';

/** The partial files writeVerified names `.<8 hex>.partial`; one left by a kill -9 says nothing about age. */
const PARTIAL = /^\.[0-9a-f]{8}\.partial$/;

const markerSchema = z.object({ from: z.string(), finishedAt: z.string() });
export type RestoreMarker = z.output<typeof markerSchema>;

/**
 * Written under a temporary name and renamed, so a marker is always whole. What a killed
 * restore left under that name goes first (a link itself, never what it points to), and 'wx'
 * then never writes through a link planted there meanwhile: it fails instead.
 */
export async function writeMarker(target: string, marker: RestoreMarker): Promise<void> {
  const partial = join(target, `${MARKER_NAME}.partial`);
  await rm(partial, { force: true });
  await writeFile(partial, `${JSON.stringify({ ...marker, restoredAt: new Date().toISOString() }, null, 2)}\n`, { flag: 'wx' });
  await rename(partial, join(target, MARKER_NAME));
}

/**
 * How new the content of `target` is, in ms since the epoch: the later of the marker's
 * `finishedAt` (what the last restore brought) and the newest file's mtime (what the
 * workload wrote since; a restored file keeps its older stored mtime). Undefined for an
 * empty or missing directory. Links are not followed.
 */
export async function targetAge(target: string): Promise<number | undefined> {
  const entries = await readdir(target, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  let newest: number | undefined;
  for (const entry of entries) {
    if (!entry.isFile() || PARTIAL.test(entry.name) || entry.name.startsWith(MARKER_NAME)) continue;
    const info = await lstat(join(entry.parentPath, entry.name)).catch(() => undefined);
    if (info) newest = Math.max(newest ?? 0, info.mtimeMs);
  }
  const marker = await readMarker(target);
  const restored = marker ? Date.parse(marker.finishedAt) : Number.NaN;
  return Number.isNaN(restored) ? newest : Math.max(newest ?? 0, restored);
}

/** The marker in `target`, or undefined when there is none (or it is not one: then the files decide). */
async function readMarker(target: string): Promise<RestoreMarker | undefined> {
  try {
    const parsed = markerSchema.safeParse(JSON.parse(await readRegularFile(join(target, MARKER_NAME), 64 * 1024)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
