import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from '../helpers/cli.js';
import { TestResources } from '../helpers/resources.js';
import { until } from '../helpers/until.js';

const resources = new TestResources('preemptd-journal-');

/** Starts `preemptd simulator` with stdout on a file, as systemd puts it on the journal's stream. */
async function simulatorLines(env: (stdout: { dev: bigint; ino: bigint }) => NodeJS.ProcessEnv): Promise<string[]> {
  const path = join(resources.tempDir(), 'stdout');
  const fd = openSync(path, 'w');
  const child = spawn(process.execPath, [CLI, 'simulator', '--port', '0'], {
    env: { ...process.env, ...env(fstatSync(fd, { bigint: true })) },
    stdio: ['ignore', fd, 'ignore'],
  });
  closeSync(fd);
  resources.defer(() => child.kill('SIGKILL'));
  await until(() => readFileSync(path, 'utf8').includes('\n'));
  return readFileSync(path, 'utf8').split('\n').filter(Boolean);
}

describe('preemptd on the journal stream (systemd sets JOURNAL_STREAM)', () => {
  test('prefixes each line with its syslog priority when stdout is that stream', async () => {
    const lines = await simulatorLines(({ dev, ino }) => ({ JOURNAL_STREAM: `${dev}:${ino}` }));
    expect(lines[0]).toMatch(/^<6>\{"level":"info","severity":"INFO"/);
  });

  test('writes plain JSON lines when JOURNAL_STREAM names another stream', async () => {
    const lines = await simulatorLines(({ dev, ino }) => ({ JOURNAL_STREAM: `${dev}:${ino + 1n}` }));
    expect(lines[0]).toMatch(/^\{"level":"info","severity":"INFO"/);
  });
});
