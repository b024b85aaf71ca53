import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Commits a dedup snapshot of `files` into the file:// repository at `repo`, as the snapshot
 * step would: each file one chunk under chunks/, its manifest under snapshots/, then
 * latest.json naming it. Files carry `mtime`; the snapshot finished at `finishedAt`.
 */
export function commitDedupSnapshot(repo: string, files: Record<string, Buffer>, times: { mtime: string; finishedAt: string }): void {
  const entries = Object.entries(files).map(([path, content]) => {
    const hash = sha256(content);
    mkdirSync(join(repo, 'chunks', hash.slice(0, 2)), { recursive: true });
    writeFileSync(join(repo, 'chunks', hash.slice(0, 2), hash), content);
    return { type: 'file', path, size: content.length, mtime: times.mtime, mode: 0o644, sha256: hash, chunks: content.length ? [[hash, content.length]] : [] };
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
}
