import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Where a chunk is stored: in a pack (manifest version 2) or as its own object (version 1). */
export type ChunkHome = 'pack' | 'chunk';

export interface DedupLayout {
  /** Bytes of each chunk the files are cut in (the last of a file may be shorter). */
  chunkBytes?: number;
  /** Where the `index`-th chunk of `path` goes; every chunk its own object when not given. */
  home?: (index: number, path: string) => ChunkHome;
  /** Bytes a pack is filled to before the next one starts (a chunk never spans two). */
  packBytes?: number;
}

/**
 * Commits a dedup snapshot of `files` into the file:// repository at `repo`, as a writer
 * would: each file cut in chunks of `chunkBytes`, each chunk stored where `home` says: under
 * chunks/ab/<sha256> (version 1), or appended to the open pack packs/<24 hex> (a new one when
 * it would pass `packBytes`) and named by its pack and offset (version 2, as soon as one is
 * packed). Then its manifest under snapshots/, then latest.json naming it. Files carry
 * `mtime`; the snapshot finished at `finishedAt`. Returns the manifest's name under the repository.
 */
export function commitDedupSnapshot(repo: string, files: Record<string, Buffer>, times: { mtime: string; finishedAt: string }, layout: number | DedupLayout = {}): string {
  const { chunkBytes = 2 * 1024 * 1024, home = () => 'chunk', packBytes = 8 * 1024 * 1024 } = typeof layout === 'number' ? { chunkBytes: layout } : layout;
  let pack: { id: string; size: number } | undefined;
  let packed = false;
  const entries = Object.entries(files).map(([path, content]) => {
    const chunks: ([string, number] | [string, number, string, number])[] = [];
    for (let at = 0; at < content.length; at += chunkBytes) {
      const piece = content.subarray(at, at + chunkBytes);
      const hash = sha256(piece);
      if (home(chunks.length, path) === 'chunk') {
        mkdirSync(join(repo, 'chunks', hash.slice(0, 2)), { recursive: true });
        writeFileSync(join(repo, 'chunks', hash.slice(0, 2), hash), piece);
        chunks.push([hash, piece.length]);
        continue;
      }
      if (!pack || pack.size + piece.length > packBytes) pack = { id: randomBytes(12).toString('hex'), size: 0 };
      mkdirSync(join(repo, 'packs'), { recursive: true });
      appendFileSync(join(repo, 'packs', pack.id), piece);
      chunks.push([hash, piece.length, pack.id, pack.size]);
      pack.size += piece.length;
      packed = true;
    }
    return { type: 'file', path, size: content.length, mtime: times.mtime, mode: 0o644, sha256: sha256(content), chunks };
  });
  const bytes = entries.reduce((sum, entry) => sum + entry.size, 0);
  const manifest = {
    version: packed ? 2 : 1, mode: 'dedup', chunker: 'fastcdc-gear32-v1', checksum: 'sha256', archive: null, notice: {}, host: {},
    startedAt: times.finishedAt, finishedAt: times.finishedAt, deadline: times.finishedAt,
    complete: true, bytesWanted: bytes, bytesDone: bytes, files: entries, skipped: [], excluded: 0,
  };
  const name = `snapshots/${times.finishedAt.replace(/[-:]/g, '')}-test-00000000.json`;
  mkdirSync(dirname(join(repo, name)), { recursive: true });
  writeFileSync(join(repo, name), JSON.stringify(manifest));
  writeFileSync(join(repo, 'latest.json'), JSON.stringify({ version: 1, manifest: name, finishedAt: times.finishedAt }));
  return name;
}
