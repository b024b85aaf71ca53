import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const documents = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => join('docs', name))];

/** The text outside fenced code blocks: a link or heading inside one is an example. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** Anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = heading!
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

/** Relative links (`[text](target)`) of one document, scheme-less and not mail. */
function relativeLinks(file: string): string[] {
  return [...prose(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((match) => match[1]!)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

test.each(documents)('every relative link in %s names a file (and heading) in the repository', (document) => {
  const file = join(root, document);
  const broken: string[] = [];
  for (const target of relativeLinks(file)) {
    const [path, anchor] = target.split('#') as [string, string | undefined];
    const linked = path === '' ? file : join(dirname(file), decodeURIComponent(path));
    if (!linked.startsWith(root) || !existsSync(linked)) {
      broken.push(`${target}: no such file ${relative(root, linked)}`);
      continue;
    }
    if (anchor && linked.endsWith('.md') && statSync(linked).isFile() && !anchors(linked).has(anchor)) {
      broken.push(`${target}: no heading with anchor #${anchor} in ${relative(root, linked)}`);
    }
  }
  expect(broken).toEqual([]);
});

/** Top-level folders of the repository that docs name files in (not build output or dependencies). */
const repoFolders = readdirSync(root, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && !['node_modules', 'dist'].includes(entry.name))
  .map((entry) => entry.name);

/**
 * Paths named in code spans: those under a repository folder, and every Markdown file (a
 * doc pointing at another doc); patterns and placeholders (`bench/<name>.bench.ts`) aside.
 * The .deb installs the docs under /usr/share/doc/preemptd, so those are named as installed.
 */
function namedPaths(file: string): string[] {
  return [...prose(readFileSync(file, 'utf8')).matchAll(/`([^`\s]+)`/g)]
    .map((match) => match[1]!)
    .filter((path) => !/[<>{}*]/.test(path) && !path.startsWith('/usr/share/doc/preemptd/'))
    .filter((path) => path.endsWith('.md') || repoFolders.some((folder) => path.startsWith(`${folder}/`)));
}

test.each(documents)('every repository file named in %s exists', (document) => {
  const file = join(root, document);
  const missing = namedPaths(file).filter((path) => ![join(root, path), join(dirname(file), path)].some((candidate) => candidate.startsWith(root) && existsSync(candidate)));
  expect(missing).toEqual([]);
});

test('the link check sees links and anchors, so an empty result means something', () => {
  expect(relativeLinks(join(root, 'README.md')).length).toBeGreaterThan(5);
  expect(anchors(join(root, 'docs', 'operations.md'))).toContain('healthz');
  expect(namedPaths(join(root, 'docs', 'providers.md'))).toContain('src/providers/metadata/facts-cache.ts');
});
