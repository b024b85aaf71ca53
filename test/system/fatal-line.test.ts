import { runCli } from '../helpers/cli.js';

/** Why `run` could not start: the human line on stderr, and one JSON fatal line on stdout for log pipelines. */

function fatalLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test.each([
  ['an unreadable config (78)', ['run', '--config', '/nonexistent/preemptd.yaml'], 78, 'ERR_CONFIG', 'ConfigError', 'cannot read /nonexistent/preemptd.yaml'],
  ['an unknown flag (64)', ['run', '--bogus-flag'], 64, 'ERR_USAGE', 'PreemptdError', 'Unknown argument: bogus-flag'],
  ['a bad --log-level (64)', ['run', '--log-level', 'loud'], 64, 'ERR_USAGE', 'PreemptdError', 'Invalid values'],
])('run with %s: stderr says why, stdout has one fatal JSON line with err and exitCode', async (_what, args, exitCode, code, type, message) => {
  const result = await runCli(args);
  expect(result.code).toBe(exitCode);
  expect(result.stderr).toContain(`preemptd: `);
  expect(result.stderr).toContain(message);
  const lines = fatalLines(result.stdout);
  expect(lines).toEqual([
    expect.objectContaining({ level: 'fatal', severity: 'CRITICAL', name: 'preemptd', exitCode, err: expect.objectContaining({ type, code, message: expect.stringContaining(message) }) }),
  ]);
  expect((lines[0]!.err as { stack: string }).stack).toMatch(new RegExp(`^${type}: `));
  expect(lines[0]!.msg).toContain(message);
});

test('other commands keep stdout for their own output: no log line when they fail', async () => {
  const result = await runCli(['check', '--bogus-flag']);
  expect(result.code).toBe(64);
  expect(result.stdout).toBe('');
  expect(result.stderr).toBe('preemptd: Unknown argument: bogus-flag\n\nRun "preemptd --help" for usage.\n');
});
