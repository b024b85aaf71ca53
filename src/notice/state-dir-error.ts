import { errorMessage, PreemptdError } from '../lib/errors.js';

const STATE_DIR_FAILURES: Record<string, string> = {
  EISDIR: 'is a directory, where the journal file belongs',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'exists and is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
};

/** What is wrong with the state dir, at which path, and how to fix it. */
export function stateDirError(stateDir: string, error: unknown, at: string): PreemptdError {
  const { code, path = at } = error as NodeJS.ErrnoException;
  const reason = (code && STATE_DIR_FAILURES[code]) ?? errorMessage(error);
  return new PreemptdError(
    'ERR_STATE_DIR',
    `state dir ${stateDir} cannot hold the journal: ${path}: ${reason}; expected a directory preemptd can create and write (fix that path, or set stateDir / --state-dir to another directory)`,
    { cause: error },
  );
}
