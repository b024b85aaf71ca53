import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { commitDedupSnapshot } from '../helpers/dedup-repository.js';
import { ROOT } from '../helpers/examples.js';
import { validateKubernetesObject, type Manifest } from '../helpers/kubernetes-schema.js';
import { TestResources } from '../helpers/resources.js';

// The boot recipes in packaging/recipes/restore/ run their own command line, taken from the
// shipped files, against a file:// repository: an empty target restores, an up-to-date one
// is skipped, a newer snapshot restores again (warm), a file the workload wrote since keeps it.

const resources = new TestResources('preemptd-restore-recipes-');

const RECIPES = join(ROOT, 'packaging/recipes/restore');
const UNIT = readFileSync(join(RECIPES, 'preemptd-restore.service'), 'utf8');
const JOB = parse(readFileSync(join(RECIPES, 'kubernetes-restore.yaml'), 'utf8')) as Manifest;
const restoreContainer = () => (JOB.spec.template.spec.initContainers as Manifest[])[0]!;

/** A unit's `Key=` values, in order. */
function unitValues(text: string, key: string): string[] {
  return text.split('\n').flatMap((line) => (line.startsWith(`${key}=`) ? [line.slice(key.length + 1)] : []));
}

/** The preemptd arguments each recipe runs, with its variables (`${NAME}` / `$(NAME)`) filled in. */
const RECIPE_ARGS: Record<string, (vars: Record<string, string>) => string[]> = {
  'systemd unit': (vars) => {
    const [program, ...args] = unitValues(UNIT, 'ExecStart')[0]!.split(' ');
    expect(program).toBe('/usr/bin/preemptd');
    return args.map((arg) => arg.replace(/^\$\{(\w+)\}$/, (_, name: string) => vars[name]!));
  },
  'Kubernetes init container': (vars) => (restoreContainer().args as string[]).map((arg) => arg.replace(/^\$\((\w+)\)$/, (_, name: string) => vars[name]!)),
};

/** The JSON lines the restore printed; its closing event last. */
function events(stdout: string): Manifest[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{"event"'))
    .map((line) => JSON.parse(line) as Manifest);
}

describe.each(Object.keys(RECIPE_ARGS))('the restore-at-boot %s', (recipe) => {
  test('restores into an empty target, skips an up-to-date one, restores a newer snapshot warm, keeps what the workload wrote since', async () => {
    const dir = resources.tempDir();
    const repo = join(dir, 'repo');
    const to = join(dir, 'ckpt');
    const run = async () => {
      const result = await runCli(RECIPE_ARGS[recipe]!({ PREEMPTD_RESTORE_FROM: `file://${repo}/`, PREEMPTD_RESTORE_TO: to }));
      expect(result).toMatchObject({ code: 0, stderr: '' });
      return events(result.stdout).at(-1);
    };

    // No snapshot committed yet (a first boot): nothing to restore, and the workload may start.
    expect(await run()).toMatchObject({ event: 'restore.skipped', reason: expect.stringContaining('has no latest.json yet: nothing to restore') });

    const base = Buffer.alloc(300_000, 1);
    commitDedupSnapshot(repo, { 'base.pt': base, 'step-1.pt': Buffer.from('step one') }, { mtime: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:05:00.000Z' });
    expect(await run()).toMatchObject({ event: 'restore.summary', ok: true, filesTotal: 2, filesRestored: 2, filesPresent: 0, filesFailed: 0, bytesFetched: 300_008 });
    expect(readFileSync(join(to, 'step-1.pt'), 'utf8')).toBe('step one');
    expect(JSON.parse(readFileSync(join(to, '.preemptd-restore.json'), 'utf8'))).toMatchObject({ from: `file://${repo}/`, finishedAt: '2026-01-01T00:05:00.000Z' });

    // Up to date: not restored again (a file removed meanwhile stays removed: nothing was fetched).
    rmSync(join(to, 'step-1.pt'));
    expect(await run()).toMatchObject({ event: 'restore.skipped', reason: expect.stringContaining(`${to} is up to date`) });
    expect(existsSync(join(to, 'step-1.pt'))).toBe(false);

    // A newer snapshot: restored, base.pt already in place and not fetched.
    commitDedupSnapshot(repo, { 'base.pt': base, 'step-2.pt': Buffer.from('step two') }, { mtime: '2026-01-02T00:00:00.000Z', finishedAt: '2026-01-02T00:05:00.000Z' });
    expect(await run()).toMatchObject({ event: 'restore.summary', ok: true, filesRestored: 1, filesPresent: 1, bytesFetched: 8, bytesReused: 300_000 });
    expect(readFileSync(join(to, 'step-2.pt'), 'utf8')).toBe('step two');

    // The workload wrote a checkpoint after the latest snapshot: what it holds is newer, so it is left alone.
    writeFileSync(join(to, 'step-3.pt'), 'step three');
    utimesSync(join(to, 'step-3.pt'), new Date('2026-01-03T00:00:00Z'), new Date('2026-01-03T00:00:00Z'));
    writeFileSync(join(to, 'step-2.pt'), 'changed locally');
    expect(await run()).toMatchObject({ event: 'restore.skipped', reason: expect.stringContaining('is up to date') });
    expect(readFileSync(join(to, 'step-2.pt'), 'utf8')).toBe('changed locally');
  }, 60_000);
});

test('the systemd unit is a oneshot ordered before the workload, whose drop-in requires it', () => {
  expect(unitValues(UNIT, 'Type')).toEqual(['oneshot']);
  expect(unitValues(UNIT, 'RemainAfterExit')).toEqual(['yes']);
  expect(unitValues(UNIT, 'Before')).toEqual(['trainer.service']);
  const dropIn = readFileSync(join(RECIPES, 'trainer.service.d/restore.conf'), 'utf8');
  expect(unitValues(dropIn, 'Requires')).toEqual(['preemptd-restore.service']);
  expect(unitValues(dropIn, 'After')).toEqual(['preemptd-restore.service']);
});

test('the Kubernetes example is a valid Job whose init container restores into the volume the trainer mounts', async () => {
  await validateKubernetesObject(JOB);
  const mounts = (container: Manifest) => (container.volumeMounts as Manifest[]).map((mount) => `${mount.name}:${mount.mountPath}`);
  const trainer = (JOB.spec.template.spec.containers as Manifest[])[0]!;
  const to = (restoreContainer().env as Manifest[]).find((entry) => entry.name === 'PREEMPTD_RESTORE_TO')!.value as string;
  expect(mounts(trainer)).toContain(`checkpoints:${to}`);
  expect(mounts(restoreContainer())).toContain(`checkpoints:${to}`);
});
