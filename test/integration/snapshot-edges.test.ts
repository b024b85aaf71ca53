import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepFailure } from '../../src/lib/errors.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { manifestSchema, type Manifest } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { testStepContext, type TestStepContext } from '../helpers/step-context.js';

let dir: string;
let step: TestStepContext | undefined;

/** tmpfs where there is one: 40,000 files take 40 s to create on this machine's disk, 0.7 s there. */
const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

beforeEach(async () => {
  dir = await mkdtemp(join(scratch, 'snapshot-edges-'));
});

afterEach(async () => {
  step?.dispose();
  step = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function readStoredManifest(prefix: string): Promise<Manifest> {
  return manifestSchema.parse(JSON.parse(await readFile(join(dir, prefix, 'manifest.json'), 'utf8')));
}

/** Every file under `root`, `.partial` ones included. */
async function allFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('snapshot walk and the deadline', () => {
  test('a tree too large to list before the cut-off: the walk stops there and a manifest of what was stored is written', async () => {
    // 40,000 files in 200 directories (one touch each, fast): listing them takes about 1 s
    // here, several times the 300 ms step.
    execFileSync('bash', ['-c', 'mkdir big && cd big && for d in $(seq 100 299); do mkdir d$d && (cd d$d && touch f{1..200}); done'], { cwd: dir });
    step = testStepContext({ timeoutMs: 300 });
    const options = snapshotOptionsSchema.parse({ paths: [join(dir, 'big')], to: `file://${dir}/store/`, reserve: '2s' });

    const run = snapshotStep.run(options, step.context);

    await expect(run).rejects.toBeInstanceOf(StepFailure);
    const manifest = await readStoredManifest('store');
    expect(manifest.complete).toBe(false);
    expect(manifest.skipped).toContainEqual({ path: join(dir, 'big'), reason: expect.stringContaining('listing stopped at the cut-off') });
    expect(Date.parse(manifest.finishedAt)).toBeLessThanOrEqual(step.context.deadline);
    expect((await allFiles(join(dir, 'store'))).filter((path) => path.endsWith('.partial'))).toEqual([]);
  });
});
