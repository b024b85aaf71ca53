import { fstatSync } from 'node:fs';

/*
 * What each pino level is called by the tools that read our lines: the syslog priority that
 * journald files a line under (sd-daemon's `<N>` prefix), and the `severity` that cloud
 * logging agents (GKE, Cloud Run) read instead of `level`.
 */
const LEVELS: Record<string, { priority: number; severity: string }> = {
  trace: { priority: 7, severity: 'DEBUG' },
  debug: { priority: 7, severity: 'DEBUG' },
  info: { priority: 6, severity: 'INFO' },
  warn: { priority: 4, severity: 'WARNING' },
  error: { priority: 3, severity: 'ERROR' },
  fatal: { priority: 2, severity: 'CRITICAL' },
};

/** The `severity` for a pino level label. */
export function severityOf(label: string): string {
  return LEVELS[label]?.severity ?? 'DEFAULT';
}

/**
 * True when `fd` is the stream systemd connected to the journal: JOURNAL_STREAM holds its
 * `device:inode`, and a child that redirected its output inherits the variable but not the
 * stream, so both must match.
 */
export function writesToJournal(env: NodeJS.ProcessEnv, fd: number): boolean {
  const [device, inode] = (env.JOURNAL_STREAM ?? '').split(':');
  if (!device || !inode) return false;
  try {
    const stats = fstatSync(fd, { bigint: true });
    return String(stats.dev) === device && String(stats.ino) === inode;
  } catch {
    return false;
  }
}

/** pino writes `level` first in every line. */
const LEVEL_FIELD = /^\{"level":"(\w+)"/;

/** One JSON line with its syslog priority in front (`<4>{"level":"warn",...}`), as journald reads it. */
export function withJournalPriority(line: string): string {
  const level = LEVEL_FIELD.exec(line)?.[1];
  return `<${LEVELS[level ?? '']?.priority ?? 6}>${line}`;
}
