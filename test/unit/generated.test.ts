import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compiledModuleText, WAT_MODULES } from '../../scripts/compile-wat.ts';
import { generatedFiles } from '../../src/commands/generated-files.js';
import { ROOT } from '../helpers/examples.js';

test.each(Object.entries(generatedFiles()))('%s is committed as generated (else run npm run generate)', (path, text) => {
  expect(readFileSync(join(ROOT, path), 'utf8')).toBe(text);
});

test.each(WAT_MODULES.map((entry) => [entry.module, entry] as const))('%s is committed as compiled from its .wat (else run npm run generate)', async (path, entry) => {
  expect(readFileSync(join(ROOT, path), 'utf8')).toBe(await compiledModuleText(entry));
});
