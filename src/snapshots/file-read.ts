import type { Part } from '../stores/parts.js';
import type { CutRef } from './cut-chunks.js';
import type { FoundFile } from './walk.js';

/** What was actually stored for a file. */
export interface ReadResult {
  size: number;
  mtimeMs: number;
  /** In the algorithm `open` was given. */
  checksum: string;
  /** Set when the file changed between the scan and the end of reading; says how. */
  changed?: string;
}

/**
 * A part of a file opened with `chunks`: also the chunks it completes, in order (the first ones
 * may lie partly or wholly in earlier parts). After the last part may come one of no bytes with
 * the file's last chunks, if any were still open. A file cut in segments (segmented-read.ts)
 * gives parts that end on chunk ends, each with exactly the chunks it holds.
 */
export interface ReadPart extends Part {
  chunks?: CutRef[];
}

export interface FileRead {
  /**
   * The file's bytes in parts of `partSize` (the last may be shorter), or of about a segment
   * for a file cut in segments, each with its CRC32.
   * Iterate once; leaving early (`break`, `return`) closes the file. The next part is read
   * while the caller works on this one.
   */
  parts: AsyncIterable<ReadPart>;
  /** Bytes `parts` will yield. */
  size: number;
  /** Call after `parts` was read to the end. */
  result(): Promise<ReadResult>;
}

/**
 * What the file's path held once it was read (lstat: a link is looked at, never followed), or
 * null when nothing did. The file read is the one walked (dev, ino) only if it is still there.
 */
export interface PathAfterRead {
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  regular: boolean;
}

/** `lstat`'s answer as a PathAfterRead. */
export function pathAfterRead(info: { size: number; mtimeMs: number; dev: number; ino: number; isFile(): boolean } | null): PathAfterRead | null {
  return info && { size: info.size, mtimeMs: info.mtimeMs, dev: info.dev, ino: info.ino, regular: info.isFile() };
}

/** What was stored of `file`, opened as `opened`, with notes on how it changed meanwhile. */
export function readResult(
  file: FoundFile,
  opened: { size: number; mtimeMs: number },
  done: { checksum: string; bytesRead: number; after: PathAfterRead | null; exactSize: boolean },
): ReadResult {
  const notes: string[] = [];
  if (opened.size !== file.size || opened.mtimeMs !== file.mtimeMs) notes.push(`changed after it was found (${file.size} bytes then, ${opened.size} when opened)`);
  if (done.bytesRead !== opened.size) notes.push(`shrank to ${done.bytesRead} bytes while being read${done.exactSize ? ' (padded with zeros)' : ''}`);
  if (!done.after) notes.push('removed while being read');
  else if (!done.after.regular || done.after.dev !== file.dev || done.after.ino !== file.ino) notes.push('replaced while being read (its path now names a link or another file); stored as of opening');
  else if (done.after.size !== opened.size || done.after.mtimeMs !== opened.mtimeMs) notes.push(`written to while being read (now ${done.after.size} bytes); stored as of opening`);
  return {
    size: done.exactSize ? opened.size : done.bytesRead,
    mtimeMs: opened.mtimeMs,
    checksum: done.checksum,
    ...(notes.length ? { changed: notes.join('; ') } : {}),
  };
}
