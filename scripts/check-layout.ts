/**
 * Fails when src/ breaks the house rules of DESIGN.md: an import cycle, an import against
 * the flow, a folder outside the layout, or a file over MAX_LINES lines.
 * Every import counts: static, `import type`, re-exports and `import()` alike, because a
 * cycle closed through a type or a lazy import still ties the two modules together.
 * Run by `npm test`; `node scripts/check-layout.ts` prints what it found.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Which folders of src/ each folder may import from (its own is always allowed). */
const ALLOWED: Record<string, readonly string[]> = {
  lib: [],
  notice: ['lib'],
  config: ['lib', 'notice'],
  stores: ['lib'],
  snapshots: ['lib', 'notice', 'config', 'stores'],
  kubernetes: ['lib', 'notice', 'config'],
  steps: ['lib', 'notice', 'config', 'stores', 'snapshots', 'kubernetes'],
  plan: ['lib', 'notice', 'config', 'steps'],
  providers: ['lib', 'notice', 'config', 'kubernetes'],
  daemon: ['lib', 'notice', 'config', 'stores', 'snapshots', 'kubernetes', 'steps', 'plan', 'providers'],
  observe: ['lib', 'notice', 'config', 'plan', 'providers', 'daemon'],
  simulator: ['lib', 'notice', 'config'],
  demo: ['lib', 'notice', 'simulator'],
  commands: ['lib', 'notice', 'config', 'stores', 'snapshots', 'kubernetes', 'steps', 'plan', 'providers', 'daemon', 'observe', 'simulator'],
  'cli.ts': ['lib', 'notice', 'commands'],
  'main.ts': ['cli.ts'],
};

/** Longest a file in src/ may be: past it, a file does more than one job. */
const MAX_LINES = 300;

const SRC = resolve(dirname(new URL(import.meta.url).pathname), '..', 'src');

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative specifiers a file imports, by any form. */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      found.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((specifier) => specifier.startsWith('.'));
}

/** `steps`, `lib`, ... for a file under src/; `cli.ts` for a file at the top. */
function roomOf(src: string, file: string): string {
  return relative(src, file).split('/')[0]!;
}

export interface LayoutReport {
  cycles: string[][];
  upward: string[];
  unknownRooms: string[];
  tooLong: string[];
}

/** Checks the tree under `src` (the project's src/ by default; tests hand a fixture tree). */
export function checkLayout(src = SRC): LayoutReport {
  const files = sourceFiles(src);
  const graph = new Map<string, string[]>();
  const upward: string[] = [];
  const unknownRooms = new Set<string>();
  const tooLong: string[] = [];
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n').length - 1;
    if (lines > MAX_LINES) tooLong.push(`src/${relative(src, file)} has ${lines} lines (at most ${MAX_LINES})`);
    const from = roomOf(src, file);
    if (!(from in ALLOWED)) unknownRooms.add(from);
    const targets = importsOf(file).map((specifier) => resolve(dirname(file), specifier).replace(/\.js$/, '.ts'));
    graph.set(file, targets);
    for (const target of targets) {
      const to = roomOf(src, target);
      if (to !== from && !(ALLOWED[from] ?? []).includes(to)) upward.push(`src/${relative(src, file)} imports src/${relative(src, target)} (${from} may not import ${to})`);
    }
  }
  return { cycles: stronglyConnected(graph).map((cycle) => cycle.map((file) => `src/${relative(src, file)}`)), upward, unknownRooms: [...unknownRooms], tooLong };
}

/** Tarjan's algorithm: every group of two or more files that import each other, directly or not. */
function stronglyConnected(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        group.push(member);
      } while (member !== node);
      if (group.length > 1 || (graph.get(node) ?? []).includes(node)) groups.push(group.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return groups;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { cycles, upward, unknownRooms, tooLong } = checkLayout();
  for (const cycle of cycles) console.error(`import cycle: ${cycle.join(' <-> ')}`);
  for (const line of upward) console.error(`import against the flow: ${line}`);
  for (const room of unknownRooms) console.error(`src/${room} is not a folder of the layout (scripts/check-imports.ts ALLOWED)`);
  for (const line of tooLong) console.error(`file too long: ${line}`);
  const problems = cycles.length + upward.length + unknownRooms.length + tooLong.length;
  console.log(problems === 0 ? `layout: no import cycle, no import against the flow, no file over ${MAX_LINES} lines` : `layout: ${problems} problem(s)`);
  process.exitCode = problems === 0 ? 0 : 1;
}
