import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { checkLayout } from '../../scripts/check-layout.js';

/** Writes a src/ tree from a map of path → content. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'preemptd-layout-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

describe('the layout check', () => {
  const roots: string[] = [];
  afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));
  const check = (files: Record<string, string>) => {
    const root = tree(files);
    roots.push(root);
    return checkLayout(root);
  };

  it('finds nothing wrong in the project src/', () => {
    expect(checkLayout()).toEqual({ cycles: [], upward: [], unknownRooms: [], tooLong: [] });
  });

  it('finds a cycle closed through import type, across folders of the same room', () => {
    const report = check({
      'plan/a.ts': "import type { B } from './inner/b.js';\nexport type A = B;\n",
      'plan/inner/b.ts': "import type { A } from '../a.js';\nexport type B = A | 1;\n",
    });
    expect(report.cycles).toEqual([['src/plan/a.ts', 'src/plan/inner/b.ts']]);
  });

  it('finds a cycle closed through a lazy import() and an export ... from', () => {
    const report = check({
      'stores/registry.ts': "export const open = () => import('./s3.js');\n",
      'stores/s3.ts': "export { open } from './registry.js';\n",
    });
    expect(report.cycles).toHaveLength(1);
  });

  it('finds an import against the flow, and a folder outside the layout', () => {
    const report = check({
      'lib/log.ts': "import type { Notice } from '../notice/notice.js';\nexport type L = Notice;\n",
      'notice/notice.ts': 'export interface Notice { id: string }\n',
      'misc/thing.ts': 'export const x = 1;\n',
    });
    expect(report.upward).toEqual(['src/lib/log.ts imports src/notice/notice.ts (lib may not import notice)']);
    expect(report.unknownRooms).toEqual(['misc']);
  });

  it('allows an import down the flow', () => {
    const report = check({
      'plan/build.ts': "import type { Notice } from '../notice/notice.js';\nexport type P = Notice;\n",
      'notice/notice.ts': 'export interface Notice { id: string }\n',
    });
    expect(report).toEqual({ cycles: [], upward: [], unknownRooms: [], tooLong: [] });
  });

  it('finds a file over 300 lines', () => {
    const report = check({ 'lib/long.ts': 'export const x = 1;\n'.repeat(301), 'lib/ok.ts': 'export const y = 1;\n'.repeat(300) });
    expect(report.tooLong).toEqual(['src/lib/long.ts has 301 lines (at most 300)']);
  });
});
