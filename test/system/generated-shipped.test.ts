import { spawnSync } from 'node:child_process';
import { generatedFiles } from '../../src/commands/generated-files.js';
import { ROOT } from '../helpers/examples.js';

test('the npm package ships every generated file (schema, completions, man page)', () => {
  const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  expect(result.status).toBe(0);
  const [{ files }] = JSON.parse(result.stdout) as [{ files: { path: string }[] }];
  expect(files.map((file) => file.path)).toEqual(expect.arrayContaining(Object.keys(generatedFiles())));
});
