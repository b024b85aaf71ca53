/**
 * WebAssembly in the agent is written as text (.wat) and shipped compiled, as a TypeScript
 * module holding the binary in base64: tsc, the bundler and the reading threads (which run
 * from source under the test runner) all load that as they load any module. `npm run generate`
 * writes it; test/unit/generated.test.ts fails while the committed module differs.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import wabt from 'wabt';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..');

/** The .wat files compiled, and the module each becomes (paths from the repository's root). */
export const WAT_MODULES = [{ wat: 'src/snapshots/gear-cut.wat', module: 'src/snapshots/gear-cut-wasm.ts', name: 'GEAR_CUT_WASM' }] as const;

/** The text of the TypeScript module for one of WAT_MODULES. */
export async function compiledModuleText(entry: (typeof WAT_MODULES)[number]): Promise<string> {
  const parsed = (await wabt()).parseWat(entry.wat, readFileSync(join(ROOT, entry.wat), 'utf8'));
  try {
    parsed.validate();
    const base64 = Buffer.from(parsed.toBinary({}).buffer).toString('base64');
    return [
      `/** ${entry.wat} compiled by \`npm run generate\` (scripts/compile-wat.ts): edit the .wat, not this file. */`,
      `export const ${entry.name} =`,
      `  '${base64}';`,
      '',
    ].join('\n');
  } finally {
    parsed.destroy();
  }
}
