/**
 * Writes the files generated from the code (src/commands/generated-files.ts lists them: the
 * config's JSON Schema, the bash and zsh completions, the man page, the text of --help), and the
 * WebAssembly modules compiled from .wat (compile-wat.ts). Run `npm run generate` after changing
 * the config schema, a step type's options, the CLI or a .wat; test/unit/generated.test.ts
 * fails while a committed file differs. Reads the built modules in dist/, as Node runs this
 * file without a resolver for the sources' `.js` specifiers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as GeneratedFiles from '../src/commands/generated-files.js';
import { compiledModuleText, WAT_MODULES } from './compile-wat.ts';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..');
const { generatedFiles } = (await import(join(ROOT, 'dist/src/commands/generated-files.js'))) as typeof GeneratedFiles;

const compiled = await Promise.all(WAT_MODULES.map(async (entry) => [entry.module, await compiledModuleText(entry)] as const));
for (const [path, text] of [...Object.entries(generatedFiles()), ...compiled]) {
  mkdirSync(dirname(join(ROOT, path)), { recursive: true });
  writeFileSync(join(ROOT, path), text);
  console.log(`wrote ${path}`);
}
