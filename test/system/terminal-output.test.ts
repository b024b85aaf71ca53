import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, runCli } from '../helpers/cli.js';
import { TestResources } from '../helpers/resources.js';

/** simulator and restore log for a person at a terminal: text on a TTY, JSON otherwise, --log-format forces one. */
const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;
if (!HAS_SCRIPT) console.warn('script (util-linux) not installed: skipping the pseudo-terminal tests');
const withScript = HAS_SCRIPT ? test : test.skip;
const resources = new TestResources('preemptd-terminal-');

const quote = (arg: string) => `'${arg.replace(/'/g, "'\\''")}'`;

/**
 * The first line `preemptd <args>` writes when its stdout is a pseudo-terminal (util-linux
 * `script`), as the terminal shows it: a progress bar cleared before it (`\r`, erase line) is gone.
 */
function firstLineOnTerminal(args: string[]): Promise<string> {
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no line within 20 s: ${output}`));
    }, 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += String(chunk);
      const end = output.indexOf('\n');
      if (end < 0) return;
      clearTimeout(timer);
      child.once('close', () => resolve(output.slice(0, end).replace(/\r$/, '').split('\r\x1b[K').at(-1)!));
      child.kill('SIGTERM');
    });
  });
}

withScript('on a terminal the simulator logs readable text lines', async () => {
  const line = await firstLineOnTerminal(['simulator', '--port', '0']);
  expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d\d\dZ INFO {2}simulated aws metadata service at http:\/\/127\.0\.0\.1:\d+; .* provider=aws .*kind=terminate/);
}, 30_000);

withScript('--log-format json keeps JSON lines on a terminal', async () => {
  const line = await firstLineOnTerminal(['simulator', '--port', '0', '--log-format', 'json']);
  expect(JSON.parse(line)).toMatchObject({ level: 'info', provider: 'aws' });
}, 30_000);

/** Everything `preemptd <args>` writes to a pseudo-terminal (stdout and stderr) until it exits. */
function everythingOnTerminal(args: string[]): Promise<string> {
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += String(chunk)));
  return new Promise((resolve) => child.once('close', () => resolve(output)));
}

/** A one-file snapshot in a directory, as `restore --from file://` reads it. */
function fileSnapshot(): string {
  const dir = resources.tempDir();
  mkdirSync(join(dir, 'snap', 'ckpt'), { recursive: true });
  writeFileSync(join(dir, 'snap', 'ckpt', 'empty.txt'), '');
  const file = { type: 'file', path: 'ckpt/empty.txt', size: 0, mtime: '2026-01-01T00:00:00.000Z', mode: 0o644, crc32: '00000000' };
  const manifest = { version: 1, mode: 'files', checksum: 'crc32', archive: null, notice: {}, host: {}, startedAt: '', finishedAt: '', deadline: '', complete: true, bytesWanted: 0, bytesDone: 0, skipped: [], excluded: 0, files: [file] };
  writeFileSync(join(dir, 'snap', 'manifest.json'), JSON.stringify(manifest));
  return dir;
}

withScript('on a terminal restore logs readable text lines', async () => {
  const dir = fileSnapshot();
  const line = await firstLineOnTerminal(['restore', '--from', `file://${dir}/snap/`, '--to', join(dir, 'out')]);
  expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d\d\dZ INFO {2}restore finished; every checksum verified from=file:\/\/\S+ to=\S+ files=1 /);
}, 30_000);

withScript('on a terminal restore ends with a summary for a person, not JSON lines', async () => {
  const dir = fileSnapshot();
  const output = await everythingOnTerminal(['restore', '--from', `file://${dir}/snap/`, '--to', join(dir, 'out')]);
  expect(output).toMatch(/restored 1 of 1 files downloaded \(0 B fetched\), 0 already in place \(0 B reused\), 0 failed, in \d+\.\d s\r?\n$/);
  expect(output).not.toContain('"event"');
}, 30_000);

test('where stdout is a pipe restore logs JSON, and --log-format text forces text there', async () => {
  const dir = fileSnapshot();
  const piped = await runCli(['restore', '--from', `file://${dir}/snap/`, '--to', join(dir, 'out1')]);
  expect(piped.code).toBe(0);
  const [logLine, summary] = piped.stdout.trim().split('\n');
  expect(JSON.parse(logLine!)).toMatchObject({ level: 'info', msg: 'restore finished; every checksum verified', files: 1 });
  expect(JSON.parse(summary!)).toMatchObject({ event: 'restore.summary', ok: true, filesTotal: 1, filesRestored: 1, filesFailed: 0 });
  const text = await runCli(['restore', '--from', `file://${dir}/snap/`, '--to', join(dir, 'out2'), '--log-format', 'text']);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d\d\dZ INFO {2}restore finished; every checksum verified .*files=1 .*\n\{"event":"restore\.summary","ok":true,.*\}\n$/);
  const bad = await runCli(['restore', '--from', `file://${dir}/snap/`, '--to', join(dir, 'out3'), '--log-format', 'yaml']);
  expect(bad.code).toBe(64);
  expect(bad.stderr).toContain('Choices: "json", "text"');
});
