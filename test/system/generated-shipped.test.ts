import { spawnSync } from 'node:child_process';
import { generatedFiles } from '../../src/commands/generated-files.js';
import { ROOT } from '../helpers/examples.js';

test('the npm package ships every generated file (schema, completions, man page; the --help text compiled)', () => {
  const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  expect(result.status).toBe(0);
  const [{ files }] = JSON.parse(result.stdout) as [{ files: { path: string }[] }];
  // A generated source (the text of --help) ships as tsc compiled it.
  const shipped = Object.keys(generatedFiles()).map((path) => path.replace(/^src\/(.*)\.ts$/, 'dist/src/$1.js'));
  expect(files.map((file) => file.path)).toEqual(expect.arrayContaining(shipped));
});
