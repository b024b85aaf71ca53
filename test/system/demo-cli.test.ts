import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** `npm run demo -- <args>`: the built demo's own command line. */
const DEMO = fileURLToPath(new URL('../../dist/src/demo/main.js', import.meta.url));
const demo = (...args: string[]) => spawnSync(process.execPath, [DEMO, ...args], { encoding: 'utf8', timeout: 20_000 });

test('--help prints the usage and exits 0 without starting anything', () => {
  for (const flag of ['--help', '-h']) {
    const result = demo(flag);
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(result.stdout).toMatch(/^Usage: npm run demo -- \[options\]/);
    expect(result.stdout).toContain('--provider <name>');
  }
});

test.each([
  [['--bogus'], "Unknown option '--bogus'"],
  [['--provider', 'oracle'], '--provider: got "oracle": expected one of aws, gcp, azure, alibaba'],
  [['--notice-after', 'soon'], '--notice-after: got "soon": expected a number of seconds'],
])('%j is a usage error (64) naming what was wrong, with the usage', (args, message) => {
  const result = demo(...args);
  expect(result.status).toBe(64);
  expect(result.stderr).toContain(message);
  expect(result.stderr).toContain('Usage: npm run demo');
  expect(result.stdout).toBe('');
});
