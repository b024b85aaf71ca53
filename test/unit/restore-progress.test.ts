import { jest } from '@jest/globals';
import { formatBytes } from '../../src/lib/format.js';
import { formatSeconds, progressBar, progressFields, RestoreProgress, summaryText } from '../../src/commands/restore-progress.js';
import { RestoreTally, type RestoreFigures } from '../../src/snapshots/restore-tally.js';

const GIB = 1024 ** 3;
const halfway: RestoreFigures = { filesTotal: 8, bytesTotal: 2 * GIB, filesRestored: 2, filesPresent: 1, filesFailed: 0, bytesFetched: 0.75 * GIB, bytesReused: 0.25 * GIB, elapsedMs: 4000 };

describe('restore progress', () => {
  test('figures: bytes in place count as done, the rate is what was fetched, the ETA the rest at that rate', () => {
    expect(progressFields(halfway)).toMatchObject({ percent: 50, mbPerSecond: 201.3, etaMs: 5333 });
    expect(progressFields({ ...halfway, bytesFetched: 0, bytesReused: 0 })).toMatchObject({ percent: 0, mbPerSecond: null, etaMs: null });
    expect(progressFields({ ...halfway, bytesTotal: 0, bytesFetched: 0, bytesReused: 0 })).toMatchObject({ percent: 100 });
  });

  test('the bar shows percent, bytes, rate, ETA and files, fitted to the terminal', () => {
    const bar = progressBar(halfway, 120);
    expect(bar).toBe('[####################--------------------]   50%  1.00 GiB/2.00 GiB  201 MB/s  ETA 5s  files 3/8');
    expect(progressBar(halfway, 60).length).toBeLessThan(60);
    expect(progressBar(halfway, 30)).toBe(' 50%  1.00 GiB/2.00 GiB  201 ');
  });

  test('sizes and durations read as a person writes them', () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(12.5 * 1024 ** 2), formatBytes(300 * GIB)]).toEqual(['512 B', '1.50 KiB', '12.5 MiB', '300 GiB']);
    expect([formatSeconds(42), formatSeconds(187), formatSeconds(7500)]).toEqual(['42s', '3m07s', '2h05m']);
  });

  test('the summary says what was downloaded, reused and failed, and how fast', () => {
    expect(summaryText(halfway, true)).toBe('restored 2 of 8 files downloaded (768 MiB fetched), 1 already in place (256 MiB reused), 0 failed, in 4.0 s (201 MB/s)');
    expect(summaryText({ ...halfway, filesFailed: 1 }, false)).toMatch(/^restore failed: .*, 1 failed, /);
  });

  test('JSON lines: at most one a second, then the summary', () => {
    jest.useFakeTimers();
    try {
      const lines: string[] = [];
      const tally = new RestoreTally();
      const progress = new RestoreProgress(tally, 'json', { write: (text: string) => lines.push(text) }, { write: () => undefined });
      progress.start();
      jest.advanceTimersByTime(3500);
      tally.filesRestored = 1;
      progress.finish(true);
      jest.advanceTimersByTime(5000);
      const events = lines.map((line) => JSON.parse(line) as { event: string; filesRestored: number });
      expect(events.map((event) => event.event)).toEqual(['restore.progress', 'restore.progress', 'restore.progress', 'restore.summary']);
      expect(events.at(-1)).toMatchObject({ ok: true, filesRestored: 1 });
    } finally {
      jest.useRealTimers();
    }
  });

  test('a bar: redrawn at most ten times a second and only when it changed, cleared around a log line and before the summary', () => {
    jest.useFakeTimers();
    try {
      const out: string[] = [];
      const err: string[] = [];
      const tally = new RestoreTally();
      tally.filesTotal = 2;
      tally.bytesTotal = 100;
      const progress = new RestoreProgress(tally, 'bar', { write: (text: string) => out.push(text) }, { write: (text: string) => err.push(text), columns: 100 });
      progress.start();
      jest.advanceTimersByTime(1000);
      // Nothing moved: drawn once in ten ticks.
      expect(err.filter((text) => text.includes('files 0/2'))).toHaveLength(1);
      progress.logDestination()!.write('a log line\n');
      expect(out).toEqual(['a log line\n']);
      expect(err.slice(-2)).toEqual(['\r\x1b[K', expect.stringMatching(/^\r\x1b\[K\[-+\] +0%/)]);
      progress.finish(true);
      expect(err.slice(-2)).toEqual(['\r\x1b[K', expect.stringMatching(/^restored 0 of 2 files/)]);
    } finally {
      jest.useRealTimers();
    }
  });
});
