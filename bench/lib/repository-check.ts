import { createHash } from 'node:crypto';
import { open, readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { silentLogger } from '../../src/lib/log.js';
import { manifestSchema, type Manifest, type StoredChunk } from '../../src/snapshots/manifest.js';
import { chunkHome } from '../../src/snapshots/repository.js';
import { restore } from '../../src/snapshots/restore.js';

/**
 * What the crash benches check of a file:// dedup repository after a kill: every manifest
 * names only chunks that are there with the content their name says, `latest.json` restores
 * byte-identical to what was written, and a sync record claims no file whose chunks are
 * missing. Stored chunks are immutable, so each is hashed once per series where it is stored.
 */
export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export class RepositoryCheck {
  private readonly verified = new Set<string>();

  constructor(private readonly repo: string) {}

  /** Chunks named by manifests or the record that are missing or do not hash to their name where they are stored. */
  async badChunks(chunks: Iterable<StoredChunk>): Promise<string[]> {
    const bad: string[] = [];
    for (const chunk of chunks) {
      const [name] = chunk;
      const where = JSON.stringify(chunk);
      if (this.verified.has(where)) continue;
      const content = await this.stored(chunk);
      if (content === undefined) bad.push(`${name.slice(0, 12)}… missing from ${chunkHome(chunk)}`);
      else if (sha256(content) !== name) bad.push(`${name.slice(0, 12)}… corrupt in ${chunkHome(chunk)}`);
      else this.verified.add(where);
    }
    return bad;
  }

  /** A chunk's bytes: its range of a pack, or its own object; undefined when not all there. */
  private async stored(chunk: StoredChunk): Promise<Buffer | undefined> {
    const file = await open(join(this.repo, chunkHome(chunk))).catch(() => undefined);
    if (!file) return undefined;
    try {
      if (chunk.length === 2) return await file.readFile();
      const [, size, , offset] = chunk;
      const { bytesRead, buffer } = await file.read(Buffer.alloc(size), 0, size, offset);
      return bytesRead === size ? buffer : undefined;
    } finally {
      await file.close();
    }
  }

  /** Every manifest under snapshots/, by name; a manifest that does not parse is a problem. */
  async manifests(problems: string[]): Promise<Map<string, Manifest>> {
    const found = new Map<string, Manifest>();
    const names = await readdir(join(this.repo, 'snapshots')).catch(() => []);
    for (const name of names.filter((entry) => entry.endsWith('.json'))) {
      try {
        found.set(name, manifestSchema.parse(JSON.parse(await readFile(join(this.repo, 'snapshots', name), 'utf8'))));
      } catch (error) {
        problems.push(`manifest ${name} does not parse: ${(error as Error).message.slice(0, 80)}`);
      }
    }
    return found;
  }

  /** The manifest latest.json names, by its name under snapshots/; undefined without a pointer. */
  async latestName(): Promise<string | undefined> {
    const text = await readFile(join(this.repo, 'latest.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as { manifest: string }).manifest.replace(/^snapshots\//, '');
  }

  /** The problems of the repository as it is now (empty when it holds). */
  async problems(known: ReadonlyMap<string, string>, restoreTo: string, record?: string): Promise<string[]> {
    const problems: string[] = [];
    const manifests = await this.manifests(problems);
    for (const [name, manifest] of manifests) {
      const bad = await this.badChunks(chunksOf(manifest.files));
      if (bad.length) problems.push(`manifest ${name} names ${bad.length} bad chunks (${bad[0]})`);
    }
    if (record !== undefined) {
      const text = await readFile(record, 'utf8').catch(() => undefined);
      if (text !== undefined) {
        const files = (JSON.parse(text) as { files: { source: string; entry: Manifest['files'][number] }[] }).files;
        for (const file of files) {
          const bad = await this.badChunks(chunksOf([file.entry]));
          if (bad.length) problems.push(`the sync record claims ${file.source} with ${bad.length} bad chunks (${bad[0]})`);
        }
      }
    }
    if ((await this.latestName()) !== undefined) {
      try {
        const result = await restore({ from: `file://${this.repo}/`, latest: true, to: restoreTo, log: silentLogger(), signal: new AbortController().signal });
        for (const file of result.manifest.files) {
          if (file.type !== 'file') continue;
          const content = await readFile(join(restoreTo, file.path));
          if (known.get(file.path) !== sha256(content)) problems.push(`latest restores ${file.path} with bytes never written under that name`);
        }
      } catch (error) {
        problems.push(`restore --latest failed: ${(error as Error).message.slice(0, 120)}`);
      }
    }
    return problems;
  }

  /** Leftover temporary files (`.xxxxxxxx.partial`) under the repository. */
  async partials(): Promise<number> {
    return (await listFiles(this.repo)).filter((path) => /(^|\/)\.[0-9a-f]{8}\.partial$/.test(path)).length;
  }
}

function chunksOf(files: Manifest['files']): StoredChunk[] {
  return files.flatMap((file) => (file.type === 'file' ? (file.chunks ?? []) : []));
}

/** Every regular file under `dir`, relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}
