import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { CLI, runCli } from '../helpers/cli.js';
import { testStepContext } from '../helpers/step-context.js';
import { testBytes } from '../helpers/seed.js';

/** `preemptd snapshots list|prune` on a file:// repository made by dedup snapshots. */

const DAY = 24 * 60 * 60_000;
let dir: string;
const repo = () => join(dir, 'repo');
const url = () => `file://${repo()}/`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshots-cli-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Three dedup snapshots of a changing model, then everything in the repository dated two days back. */
async function agedRepository(): Promise<Buffer[]> {
  const models: Buffer[] = [];
  for (let index = 0; index < 3; index += 1) {
    models.push(testBytes(512 * 1024));
    await mkdir(join(dir, 'ckpt'), { recursive: true });
    await writeFile(join(dir, 'ckpt/model.pt'), models[index]!);
    const step = testStepContext({ timeoutMs: 30_000 });
    try {
      await snapshotStep.run(snapshotOptionsSchema.parse({ paths: [join(dir, 'ckpt')], to: url(), mode: 'dedup' }), step.context);
    } finally {
      step.dispose();
    }
  }
  const then = new Date(Date.now() - 2 * DAY);
  for (const entry of await readdir(repo(), { recursive: true, withFileTypes: true })) if (entry.isFile()) await utimes(join(entry.parentPath, entry.name), then, then);
  return models;
}

const jsonLines = (text: string) => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);

test('list prints a JSON line per snapshot, newest first, the latest marked', async () => {
  await agedRepository();
  const result = await runCli(['snapshots', 'list', url()]);
  expect(result).toMatchObject({ code: 0, stderr: '' });
  const rows = jsonLines(result.stdout);
  expect(rows).toHaveLength(3);
  expect(rows.map((row) => row.latest)).toEqual([true, false, false]);
  expect(rows[0]).toMatchObject({ files: 1, bytes: 512 * 1024, complete: true });
  expect(rows[0]!.name).toBe(JSON.parse(await readFile(join(repo(), 'latest.json'), 'utf8')).manifest);
});

test('prune is dry by default; --apply deletes what the dry run named, and the latest still restores', async () => {
  const models = await agedRepository();
  const before = await readdir(repo(), { recursive: true });

  const dry = await runCli(['snapshots', 'prune', url(), '--keep-last', '1']);
  expect(dry.code).toBe(0);
  const [plan] = jsonLines(dry.stdout);
  expect(plan).toMatchObject({ applied: false, objects: expect.any(Number) });
  expect(plan!.manifests).toHaveLength(2);
  expect(await readdir(repo(), { recursive: true })).toEqual(before);

  const applied = await runCli(['snapshots', 'prune', url(), '--keep-last', '1', '--apply', '--json']);
  expect(applied.code).toBe(0);
  expect(jsonLines(applied.stdout)[0]).toMatchObject({ applied: true, manifests: plan!.manifests, objects: plan!.objects, bytes: plan!.bytes });
  expect(await readdir(join(repo(), 'snapshots'))).toHaveLength(1);

  const restored = await runCli(['restore', '--latest', url(), '--to', join(dir, 'out')]);
  expect(restored.code).toBe(0);
  expect((await readFile(join(dir, 'out/ckpt/model.pt'))).equals(models[2]!)).toBe(true);
});

test('--keep-within takes days, and counts from when each snapshot finished', async () => {
  await agedRepository();
  const week = await runCli(['snapshots', 'prune', url(), '--keep-within', '7d']);
  expect(week.code).toBe(0);
  const [report] = jsonLines(week.stdout);
  expect(report).toMatchObject({ manifests: [], objects: 0 });
  expect((report!.kept as { reasons: string[] }[]).every((entry) => entry.reasons.includes('within'))).toBe(true);
});

test.each([
  [['snapshots', 'prune', 'file:///tmp/x/'], /snapshots prune needs a policy: --keep-last N and\/or --keep-within DURATION/],
  [['snapshots', 'list', 'file:///tmp/x/', '--apply'], /--apply: only snapshots prune takes it/],
  [['snapshots', 'prune', 'file:///tmp/x/', '--keep-within', '7'], /--keep-within: got "7": a duration needs a unit: .*, or days such as 7d/],
  [['snapshots', 'prune', 'file:///tmp/x/', '--keep-last', '-1'], /--keep-last: got -1: expected a whole number of snapshots, 0 or more/],
  [['snapshots', 'list', 'ftp://host/x/'], /PREFIX: scheme "ftp:\/\/" is not supported/],
  [['snapshots', 'tidy', 'file:///tmp/x/'], /Invalid values:\s+Argument: action, Given: "tidy"/],
])('%j is a usage error (exit 64)', async (args, message) => {
  const result = await runCli(args);
  expect(result.code).toBe(64);
  expect(result.stderr).toMatch(message);
});

test('a crafted manifest stops prune (ERR_PRUNE, exit 1) before anything is deleted', async () => {
  await agedRepository();
  await writeFile(join(repo(), 'snapshots/zz-crafted.json'), JSON.stringify({ version: 1, mode: 'dedup', files: [{ path: '../../x' }] }));
  const before = await readdir(repo(), { recursive: true });
  const result = await runCli(['snapshots', 'prune', url(), '--keep-last', '0', '--apply']);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/repo\/: nothing was deleted: a manifest does not read as a preemptd manifest \(fix or remove it first\)/);
  expect(result.stderr).toMatch(/snapshots\/zz-crafted\.json: .* is not a preemptd manifest/);
  expect(await readdir(repo(), { recursive: true })).toEqual(before);
});

const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;
(HAS_SCRIPT ? test : test.skip)('on a terminal, list prints a table', async () => {
  await agedRepository();
  const quote = (arg: string) => `'${arg.replace(/'/g, "'\\''")}'`;
  const shown = spawnSync('script', ['-qec', [process.execPath, CLI, 'snapshots', 'list', url()].map(quote).join(' '), '/dev/null'], { encoding: 'utf8' });
  const lines = shown.stdout.replace(/\r/g, '').trim().split('\n');
  expect(lines[0]).toMatch(/^NAME +FINISHED +FILES +BYTES +COMPLETE$/);
  expect(lines).toHaveLength(4);
  expect(lines[1]).toMatch(/^snapshots\/\S+\.json +\S+Z +1 +512 KiB +yes +latest$/);
});
