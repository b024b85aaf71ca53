import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { noticeView } from '../notice/notice-view.js';
import type { NoticeBoard } from './notice-board.js';

/** Readable by every user: a workload in another account or container reads it. */
const FILE_MODE = 0o644;

/**
 * Keeps `path` holding the board's current notice as JSON, and absent while there is none
 * (a file a crashed agent left is removed at start). Each write replaces the file whole
 * (a temporary file renamed over it), so a reader sees the old notice or the new one,
 * never half of either; the temporary file is created new and never through a link.
 */
export class NoticeFile {
  private queue: Promise<void> = Promise.resolve();
  private queued = false;
  private readonly stop: () => void;

  constructor(
    private readonly board: NoticeBoard,
    private readonly path: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.stop = board.onChange(() => this.sync());
    this.sync();
  }

  /** Resolves once the writes asked for so far are done. */
  settled(): Promise<void> {
    return this.queue;
  }

  async close(): Promise<void> {
    this.stop();
    await this.queue;
  }

  /** Changes that come while a write runs are folded into one more write of the latest state. */
  private sync(): void {
    if (this.queued) return;
    this.queued = true;
    this.queue = this.queue.then(async () => {
      this.queued = false;
      const notice = this.board.current();
      try {
        if (notice) await replaceFile(this.path, `${JSON.stringify(noticeView(notice, this.now()), null, 2)}\n`);
        else await rm(this.path, { force: true });
      } catch (error) {
        this.log.error({ noticeFile: this.path, err: errorMessage(error) }, `cannot ${notice ? 'write' : 'remove'} the notice file ${this.path}: ${errorMessage(error)}`);
      }
    });
  }
}

const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

async function replaceFile(path: string, text: string): Promise<void> {
  const directory = dirname(path);
  const temporary = join(directory, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  // The directory is made only when missing: one step fewer on the way to the reader.
  const handle = await open(temporary, CREATE_NEW, FILE_MODE).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
    await mkdir(directory, { recursive: true, mode: 0o755 });
    return open(temporary, CREATE_NEW, FILE_MODE);
  });
  try {
    await handle.chmod(FILE_MODE); // the umask may have taken bits away
    await handle.writeFile(text);
    await handle.close();
    // rename() replaces a link at `path` itself, never the file it points to.
    await rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
