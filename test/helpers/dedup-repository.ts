import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Commits a dedup snapshot of `files` into the file:// repository at `repo`, as the snapshot
 * step would: each file cut in chunks of `chunkBytes` under chunks/, its manifest under
 * snapshots/, then latest.json naming it. Files carry `mtime`; the snapshot finished at
 * `finishedAt`. Returns the manifest's name under the repository.
 */
export function commitDedupSnapshot(repo: string, files: Record<string, Buffer>, times: { mtime: string; finishedAt: string }, chunkBytes = 2 * 1024 * 1024): string {
  const entries = Object.entries(files).map(([path, content]) => {
    const chunks: [string, number][] = [];
    for (let at = 0; at < content.length; at += chunkBytes) {
      const piece = content.subarray(at, at + chunkBytes);
      const hash = sha256(piece);
      mkdirSync(join(repo, 'chunks', hash.slice(0, 2)), { recursive: true });
      writeFileSync(join(repo, 'chunks', hash.slice(0, 2), hash), piece);
      chunks.push([hash, piece.length]);
    }
    return { type: 'file', path, size: content.length, mtime: times.mtime, mode: 0o644, sha256: sha256(content), chunks };
  });
  const bytes = entries.reduce((sum, entry) => sum + entry.size, 0);
  const manifest = {
    version: 1, mode: 'dedup', chunker: 'fastcdc-gear32-v1', checksum: 'sha256', archive: null, notice: {}, host: {},
    startedAt: times.finishedAt, finishedAt: times.finishedAt, deadline: times.finishedAt,
    complete: true, bytesWanted: bytes, bytesDone: bytes, files: entries, skipped: [], excluded: 0,
  };
  const name = `snapshots/${times.finishedAt.replace(/[-:]/g, '')}-test-00000000.json`;
  mkdirSync(dirname(join(repo, name)), { recursive: true });
  writeFileSync(join(repo, name), JSON.stringify(manifest));
  writeFileSync(join(repo, 'latest.json'), JSON.stringify({ version: 1, manifest: name, finishedAt: times.finishedAt }));
  return name;
}
