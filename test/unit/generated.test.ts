import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedFiles } from '../../src/commands/generated-files.js';
import { ROOT } from '../helpers/examples.js';

test.each(Object.entries(generatedFiles()))('%s is committed as generated (else run npm run generate)', (path, text) => {
  expect(readFileSync(join(ROOT, path), 'utf8')).toBe(text);
});
