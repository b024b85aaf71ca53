import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitSchema, type WaitOptions } from '../../src/steps/wait/options.js';
import { waitForNewFiles, pollInterval, type WaitProgress } from '../../src/steps/wait/new-files.js';
import { waitStep } from '../../src/steps/wait/step.js';
import { compileConfig } from '../helpers/config.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wait-step-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const issues = (raw: unknown) => {
  const parsed = waitSchema.safeParse(raw);
  return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
};

describe('wait options', () => {
  test('files with a settle time, or a marker; a lone path becomes a list', () => {
    expect(waitSchema.parse({ files: '/ckpt/*.pt', settle: '3s', count: 2 })).toEqual({ paths: ['/ckpt/*.pt'], mode: 'files', settleMs: 3000, count: 2 });
    expect(waitSchema.parse({ files: ['/a', '/b/*'] })).toEqual({ paths: ['/a', '/b/*'], mode: 'files', settleMs: 2000, count: 1 });
    expect(waitSchema.parse({ marker: '/ckpt/step-*/.metadata' })).toEqual({ paths: ['/ckpt/step-*/.metadata'], mode: 'marker', settleMs: 0, count: 1 });
  });

  test.each([
    [{}, 'expected files (checkpoint files that must stop changing) or marker'],
    [{ files: '/a', marker: '/b' }, 'got files and marker: expected one of them'],
    [{ marker: '/a', settle: '1s' }, 'settle: a marker is written when the checkpoint is done'],
    [{ files: 'ckpt/*.pt' }, 'files.0: expected an absolute path or glob'],
    [{ files: [] }, 'files: expected at least one checkpoint files'],
    [{ files: '/a', settle: 5 }, 'settle: got 5: '],
    [{ files: '/a', count: 0 }, 'count: expected at least 1'],
    [{ files: '/a', every: '1s' }, 'every'],
  ])('%j is refused: %s', (raw, message) => {
    expect(issues(raw).join('\n')).toContain(message);
  });

  test('a config with a wait step compiles, and the step is not destructive (it only looks)', () => {
    const config = compileConfig({ provider: 'aws', metadataUrl: 'http://127.0.0.1:1', steps: [{ name: 'w', wait: { files: '/ckpt/*.pt' } }] });
    expect(config.steps[0]).toMatchObject({ type: 'wait', options: { mode: 'files' } });
    expect(waitStep.destructive).toBe(false);
    expect(config.steps[0]!.timeoutMs).toBe(32_000);
    expect(waitStep.describe(waitSchema.parse({ files: '/ckpt/*.pt', count: 2 }))).toBe(
      'wait for 2 new files matching /ckpt/*.pt, unchanged for 2s, written since the step it follows started',
    );
  });

  test('polls often enough to end soon after the settle time, never flat out', () => {
    expect([0, 100, 400, 2000, 60_000].map(pollInterval)).toEqual([50, 50, 100, 250, 250]);
  });
});

describe('waitForNewFiles', () => {
  const options = (more: Partial<WaitOptions> = {}): WaitOptions => ({ paths: [join(dir, '*.pt')], mode: 'files', settleMs: 200, count: 1, ...more });
  const since = () => Date.now();
  const old = (path: string) => utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));

  test('ignores files older than the reference and waits for a growing one to stop changing', async () => {
    writeFileSync(join(dir, 'step-1.pt'), 'previous');
    old(join(dir, 'step-1.pt'));
    const start = since();
    const growing = join(dir, 'step-2.pt');
    let pieces = 0;
    const writer = setInterval(() => {
      appendFileSync(growing, Buffer.alloc(1024, 1));
      if (++pieces === 8) clearInterval(writer);
    }, 60);
    const progress: WaitProgress[] = [];
    const result = await waitForNewFiles(options(), start, AbortSignal.timeout(10_000), (p) => progress.push(p));
    expect(pieces).toBe(8);
    expect(result.files).toEqual([{ path: growing, size: 8 * 1024, mtime: expect.any(String) }]);
    expect(progress.some((p) => p.settling.includes(growing))).toBe(true);
  });

  test('counts only regular files: a link or a FIFO matching the glob never ends the wait', async () => {
    const start = since();
    writeFileSync(join(dir, 'elsewhere'), 'x');
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'link.pt'));
    execFileSync('mkfifo', [join(dir, 'pipe.pt')]);
    const controller = new AbortController();
    const seen: WaitProgress[] = [];
    const waiting = waitForNewFiles(options({ settleMs: 0 }), start, controller.signal, (p) => seen.push(p));
    setTimeout(() => controller.abort(new Error('stop')), 400);
    await expect(waiting).rejects.toThrow('stop');
    expect(seen.flatMap((p) => p.seen)).toEqual([]);
  });

  test('waits for `count` new files', async () => {
    const start = since();
    writeFileSync(join(dir, 'rank-0.pt'), 'a');
    setTimeout(() => writeFileSync(join(dir, 'rank-1.pt'), 'b'), 300);
    const result = await waitForNewFiles(options({ count: 2, settleMs: 0 }), start, AbortSignal.timeout(10_000), () => undefined);
    expect(result.files.map((file) => file.path.split('/').pop())).toEqual(['rank-0.pt', 'rank-1.pt']);
  });

  test('a directory that does not exist yet is waited for, not an error', async () => {
    const start = since();
    const later = join(dir, 'later');
    setTimeout(() => {
      execFileSync('mkdir', [later]);
      writeFileSync(join(later, 'COMPLETE'), '');
    }, 200);
    const result = await waitForNewFiles({ paths: [join(later, 'COMPLETE')], mode: 'marker', settleMs: 0, count: 1 }, start, AbortSignal.timeout(10_000), () => undefined);
    expect(result.files).toHaveLength(1);
  });
});

describe('wait check', () => {
  test('names the directory the files will appear in, and whether it is there', async () => {
    const results = await waitStep.check(waitSchema.parse({ files: [join(dir, 'ckpt/*.pt')], settle: '1s' }));
    expect(results).toEqual([{ what: `directory ${join(dir, 'ckpt')}`, ok: false, reason: 'does not exist' }]);
    const present = await waitStep.check(waitSchema.parse({ marker: join(dir, 'COMPLETE') }));
    expect(present).toEqual([{ what: `directory ${dir}`, ok: true, reason: 'exists' }]);
  });
});
