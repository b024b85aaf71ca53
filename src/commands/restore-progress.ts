import { formatBytes } from '../lib/format.js';
import type { RestoreFigures, RestoreTally } from '../snapshots/restore-tally.js';

/** A bar on a terminal is redrawn at most this often; JSON lines come at most once per JSON_EVERY_MS. */
const BAR_EVERY_MS = 100;
const JSON_EVERY_MS = 1000;

export type ProgressForm = 'bar' | 'json';

interface Output {
  write(text: string): unknown;
  columns?: number;
}

/** `42s`, `3m07s`, `2h05m`. */
export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Bytes per second fetched so far (bytes already in place cost no transfer); undefined before any. */
function rateOf(figures: RestoreFigures): number | undefined {
  return figures.bytesFetched > 0 && figures.elapsedMs > 0 ? figures.bytesFetched / (figures.elapsedMs / 1000) : undefined;
}

/** Figures a person or a program reads: done, percent, rate and the time left at that rate. */
export function progressFields(figures: RestoreFigures): RestoreFigures & { percent: number; mbPerSecond: number | null; etaMs: number | null } {
  const done = figures.bytesFetched + figures.bytesReused;
  const rate = rateOf(figures);
  return {
    ...figures,
    percent: figures.bytesTotal ? Math.min(100, Math.floor((100 * done) / figures.bytesTotal)) : 100,
    mbPerSecond: rate === undefined ? null : Number((rate / 1e6).toFixed(1)),
    etaMs: rate === undefined ? null : Math.round((Math.max(0, figures.bytesTotal - done) / rate) * 1000),
  };
}

/** One terminal line: `[#####-----]  50%  1.00/2.00 GiB  250 MB/s  ETA 4s  files 3/8`, fitted to `columns`. */
export function progressBar(figures: RestoreFigures, columns: number): string {
  const fields = progressFields(figures);
  const done = figures.bytesFetched + figures.bytesReused;
  const settled = figures.filesRestored + figures.filesPresent + figures.filesFailed;
  const text = [
    `${String(fields.percent).padStart(3)}%`,
    `${formatBytes(done)}/${formatBytes(figures.bytesTotal)}`,
    fields.mbPerSecond === null ? '-- MB/s' : `${fields.mbPerSecond.toFixed(0)} MB/s`,
    `ETA ${fields.etaMs === null ? '--' : formatSeconds(fields.etaMs / 1000)}`,
    `files ${settled}/${figures.filesTotal}`,
  ].join('  ');
  const width = Math.min(40, columns - text.length - 4);
  if (width < 5) return text.slice(0, columns - 1);
  const filled = Math.round((width * fields.percent) / 100);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]  ${text}`;
}

/** The closing line for a person. */
export function summaryText(figures: RestoreFigures, ok: boolean): string {
  const rate = rateOf(figures);
  return [
    `${ok ? 'restored' : 'restore failed:'} ${figures.filesRestored} of ${figures.filesTotal} files downloaded (${formatBytes(figures.bytesFetched)} fetched)`,
    `${figures.filesPresent} already in place (${formatBytes(figures.bytesReused)} reused)`,
    `${figures.filesFailed} failed`,
    `in ${(figures.elapsedMs / 1000).toFixed(1)} s${rate === undefined ? '' : ` (${(rate / 1e6).toFixed(0)} MB/s)`}`,
  ].join(', ');
}

/**
 * Shows a restore's progress: on a terminal a bar on stderr, redrawn at most every
 * BAR_EVERY_MS; otherwise (or with --json) a JSON line on stdout at most every JSON_EVERY_MS.
 * Both end with a summary. The timer is unref'd: it never keeps the process alive.
 */
export class RestoreProgress {
  private timer: NodeJS.Timeout | undefined;
  private drawn = '';

  constructor(
    private readonly tally: RestoreTally,
    private readonly form: ProgressForm,
    private readonly stdout: Output = process.stdout,
    private readonly stderr: Output = process.stderr,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.show(), this.form === 'bar' ? BAR_EVERY_MS : JSON_EVERY_MS);
    this.timer.unref();
  }

  /** Where log lines go while a bar is drawn: the bar is cleared, the line written, the bar redrawn. */
  logDestination(): { write(chunk: string): void } | undefined {
    if (this.form !== 'bar') return undefined;
    return {
      write: (chunk: string) => {
        const bar = this.drawn;
        this.clear();
        this.stdout.write(chunk);
        if (bar) this.draw(bar);
      },
    };
  }

  /** Stops the updates and writes the summary. */
  finish(ok: boolean): void {
    clearInterval(this.timer);
    const figures = this.tally.figures();
    if (this.form === 'json') this.stdout.write(`${JSON.stringify({ event: 'restore.summary', ok, ...progressFields(figures) })}\n`);
    else {
      this.clear();
      this.stderr.write(`${summaryText(figures, ok)}\n`);
    }
  }

  /** A restore not run (--if-newer): one line saying why. */
  skipped(reason: string): void {
    if (this.form === 'json') this.stdout.write(`${JSON.stringify({ event: 'restore.skipped', reason })}\n`);
    else this.stderr.write(`restore skipped: ${reason}\n`);
  }

  private show(): void {
    const figures = this.tally.figures();
    if (this.form === 'json') this.stdout.write(`${JSON.stringify({ event: 'restore.progress', ...progressFields(figures) })}\n`);
    else this.draw(progressBar(figures, this.stderr.columns ?? 80));
  }

  private draw(bar: string): void {
    if (bar === this.drawn) return;
    this.stderr.write(`\r\x1b[K${bar}`);
    this.drawn = bar;
  }

  private clear(): void {
    if (!this.drawn) return;
    this.stderr.write('\r\x1b[K');
    this.drawn = '';
  }
}
