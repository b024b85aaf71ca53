import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepFailure } from '../../src/lib/errors.js';
import { snapshotStep } from '../../src/steps/snapshot/step.js';
import { manifestSchema, type Manifest } from '../../src/snapshots/manifest.js';
import { snapshotOptionsSchema } from '../../src/snapshots/options.js';
import { FileReader } from '../../src/snapshots/read.js';
import { describeRead } from '../../src/snapshots/upload.js';
import { walkPaths, type FoundFile } from '../../src/snapshots/walk.js';
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
    // 120,000 files in 600 directories (one touch each): listing 80,000 took 1.5-1.7 s at
    // load 8, so this outlasts the 750 ms cut-off of a 1 s step even on a quiet machine. A
    // 300 ms step left a 75 ms reserve for the manifest, which a loaded machine overran.
    execFileSync('bash', ['-c', 'mkdir big && cd big && for d in $(seq 100 699); do mkdir d$d && (cd d$d && touch f{1..200}); done'], { cwd: dir });
    step = testStepContext({ timeoutMs: 1000 });
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

describe('a walked file swapped before it is read', () => {
  /** Walks `ckpt/model.pt`, lets `swap` replace it, then opens it as the snapshot would. */
  async function openAfterSwap(swap: (path: string) => Promise<void>, release?: (path: string) => void): Promise<unknown> {
    await mkdir(join(dir, 'ckpt'));
    await writeFile(join(dir, 'ckpt/model.pt'), 'weights');
    const [file] = (await walkPaths([join(dir, 'ckpt')], [], new AbortController().signal)).entries as FoundFile[];
    await swap(file!.source);
    const reader = FileReader.start();
    let bound: NodeJS.Timeout | undefined;
    try {
      // Bounded: before the fix a FIFO blocked the reading thread for good.
      const opened = reader.open(file!, { exactSize: false, partSize: 5 * 1024 * 1024, checksum: 'crc32' });
      const blocked = new Promise((resolve) => (bound = setTimeout(resolve, 5_000, 'still blocked after 5 s')));
      return await Promise.race([opened.then(() => 'opened', (error: unknown) => error), blocked]);
    } finally {
      clearTimeout(bound);
      release?.(file!.source);
      await reader.close();
    }
  }

  test('a FIFO in its place is refused at once, naming what happened', async () => {
    const outcome = await openAfterSwap(
      async (path) => {
        await unlink(path);
        execFileSync('mkfifo', [path]);
      },
      (path) => {
        // A reading thread blocked on the FIFO (before the fix) is let go, so that it can be stopped.
        try {
          closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // ENXIO: nobody has it open for reading, nothing to let go.
        }
      },
    );

    expect(outcome).toMatchObject({ code: 'EREPLACED' });
    expect(describeRead(outcome)).toBe('no longer a regular file (a FIFO, device or directory took its place): not read');
  });

  test('a symlink in its place is not followed: the file outside the paths is not read', async () => {
    await writeFile(join(dir, 'secret'), 'not in paths');
    const outcome = await openAfterSwap(async (path) => {
      await unlink(path);
      await symlink(join(dir, 'secret'), path);
    });

    expect(outcome).toMatchObject({ code: 'ELOOP' });
    expect(describeRead(outcome)).toBe('replaced by a symlink after it was found: not followed');
  });

  test('another file renamed onto its path is refused: not the device and inode walked', async () => {
    await writeFile(join(dir, 'secret'), 'not in paths');
    const outcome = await openAfterSwap((path) => rename(join(dir, 'secret'), path));

    expect(outcome).toMatchObject({ code: 'EREPLACED' });
    expect(describeRead(outcome)).toBe('replaced by another file after it was found: not read');
  });

  test('a listed path that is a link to a file is still stored, read through its real path', async () => {
    await writeFile(join(dir, 'model-900.pt'), 'weights');
    await symlink(join(dir, 'model-900.pt'), join(dir, 'latest.pt'));
    step = testStepContext();

    await snapshotStep.run(snapshotOptionsSchema.parse({ paths: [join(dir, 'latest.pt')], to: `file://${dir}/store/` }), step.context);

    expect(await readFile(join(dir, 'store/latest.pt'), 'utf8')).toBe('weights');
  });
});
