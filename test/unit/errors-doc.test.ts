import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_CONFIG, EXIT_USAGE, EXIT_WAIT_TIMEOUT, PreemptdError, exitCodeFor, type ErrorCode } from '../../src/lib/errors.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const ERRORS_TS = join(SRC, 'lib', 'errors.ts');
const DOC = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** Codes of other libraries that src/ matches on but never raises (got's request errors). */
const FOREIGN = new Set(['ERR_ABORTED', 'ERR_GOT_REQUEST_ERROR']);

const CODE_LITERAL = /'(ERR_[A-Z0-9_]+)'/g;
const UNION = /export type ErrorCode =[^;]*;/;

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const codesIn = (text: string) => [...text.matchAll(CODE_LITERAL)].map((match) => match[1]!);
const sorted = (codes: Iterable<string>) => [...new Set(codes)].sort();

/** The members of the ErrorCode union in src/lib/errors.ts. */
const declared = sorted(codesIn(UNION.exec(readFileSync(ERRORS_TS, 'utf8'))?.[0] ?? ''));

/** Every `'ERR_...'` literal in src/ outside the union declaration: the codes raised. */
const raised = sorted(
  sourceFiles(SRC)
    .flatMap((file) => codesIn(readFileSync(file, 'utf8').replace(UNION, '')))
    .filter((code) => !FOREIGN.has(code)),
);

/** The rows of the codes table in docs/errors.md: code, raised by, means, what to do, exit. */
const rows = [...DOC.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|(.*)\|\s*$/gm)].map((match) => ({
  code: match[1]!,
  cells: match[2]!.split(' | ').map((cell) => cell.trim()),
}));
const documented = rows.map((row) => row.code);

describe('docs/errors.md', () => {
  test('the source has an ErrorCode union to check against', () => {
    expect(declared).toContain('ERR_CONFIG');
    expect(raised).toContain('ERR_CONFIG');
  });

  test('documents every code that src/ raises, and no code that it never raises', () => {
    expect(raised.filter((code) => !documented.includes(code))).toEqual([]);
    expect(documented.filter((code) => !raised.includes(code))).toEqual([]);
    expect(documented.filter((code, index) => documented.indexOf(code) !== index)).toEqual([]);
  });

  test('every raised code is a member of ErrorCode, and every member is raised', () => {
    expect(raised.filter((code) => !declared.includes(code))).toEqual([]);
    expect(declared.filter((code) => !raised.includes(code))).toEqual([]);
    expect([...FOREIGN].filter((code) => declared.includes(code))).toEqual([]);
  });

  test('each code says what raises it, what it means, what to do, and its exit status', () => {
    for (const { code, cells } of rows) {
      expect({ code, cells: cells.length }).toEqual({ code, cells: 4 });
      expect({ code, empty: cells.filter((cell) => cell === '') }).toEqual({ code, empty: [] });
    }
  });

  test('the exit status of each code is the one the CLI gives it', () => {
    for (const { code, cells } of rows) {
      const exit = cells[3]!;
      expect({ code, exit }).toEqual({ code, exit: expect.stringMatching(/^(—|\d+)$/) });
      if (exit === '—') continue;
      expect({ code, exit }).toEqual({ code, exit: String(exitCodeFor(new PreemptdError(code as ErrorCode, 'x'))) });
    }
    const statuses = [...DOC.matchAll(/^\| (\d+) \|/gm)].map((match) => Number(match[1]));
    expect(statuses).toEqual([0, 1, EXIT_WAIT_TIMEOUT, EXIT_USAGE, EXIT_CONFIG]);
  });
});
