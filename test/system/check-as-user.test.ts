import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckReport } from '../../src/commands/check.js';
import { runCli } from '../helpers/cli.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';

const resources = new TestResources('preemptd-check-as-');

// Switching users needs root and setpriv (util-linux); CI machines without either skip.
const asRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const hasNobody = spawnSync('getent', ['passwd', 'nobody']).status === 0;
const withRoot = asRoot && hasSetpriv && hasNobody ? test : test.skip;
if (!(asRoot && hasSetpriv && hasNobody)) console.warn('not root, or no setpriv or nobody user: skipping the check --as-user tests');

/** A config readable by anyone, whose stateDir and file:// destination only root may write. */
async function rootOnlySetup() {
  const dir = resources.tempDir();
  chmodSync(dir, 0o755);
  const closed = join(dir, 'root-only');
  mkdirSync(closed, { mode: 0o700 });
  const metadata = await resources.simulator({ provider: 'aws' });
  const config = writeConfigFile(dir, {
    provider: 'aws',
    metadataUrl: metadata.url,
    stateDir: join(closed, 'state'),
    server: { enabled: false },
    steps: [{ name: 'save', snapshot: { paths: [dir], to: `file://${closed}/snapshots/` } }],
  });
  chmodSync(config, 0o644);
  return { config, closed };
}

function lineOf(report: CheckReport, check: string, index = 0) {
  return report.checks.filter((entry) => entry.check === check)[index];
}

withRoot('as root, --as-user checks files with that user\'s access and says whom it checked as', async () => {
  const { config, closed } = await rootOnlySetup();

  const asNobody = await runCli(['check', '--config', config, '--as-user', 'nobody', '--json']);
  expect(asNobody.stderr).toBe('');
  expect(asNobody.code).toBe(1);
  const report = JSON.parse(asNobody.stdout) as CheckReport;
  expect(lineOf(report, 'checked as')).toMatchObject({ ok: true, reason: expect.stringMatching(/^nobody \(uid 65534, gid 65534, groups 65534\), with CAP_KILL$/) });
  expect(lineOf(report, 'stateDir')).toMatchObject({ ok: false, reason: expect.stringContaining(`${closed} is not writable by uid 65534`) });
  expect(lineOf(report, 'step save', 1)).toMatchObject({ ok: false, reason: expect.stringContaining(`${closed} is not writable by uid 65534`) });

  // The same config passes as root: only the user made the difference.
  const asRootUser = await runCli(['check', '--config', config, '--as-user', 'root', '--json']);
  const rootReport = JSON.parse(asRootUser.stdout) as CheckReport;
  expect(lineOf(rootReport, 'checked as')?.reason).toMatch(/^root \(uid 0, .*\): files are checked with root's access; pass --as-user NAME/);
  expect(lineOf(rootReport, 'stateDir')?.ok).toBe(true);
  expect(lineOf(rootReport, 'step save', 1)?.ok).toBe(true);
});

withRoot('a sync is checked with the service user\'s access: a checkpoint folder it cannot read, a destination it cannot write', async () => {
  const { closed } = await rootOnlySetup();
  const dir = join(closed, '..');
  const ckpt = join(dir, 'ckpt');
  mkdirSync(ckpt, { mode: 0o700 });
  const withSync = writeConfigFile(dir, {
    provider: 'aws',
    metadataUrl: (await resources.simulator({ provider: 'aws' })).url,
    stateDir: join(dir, 'state'),
    server: { enabled: false },
    sync: { ckpt: { paths: [ckpt], to: `file://${closed}/repo/` } },
  });
  chmodSync(withSync, 0o644);

  const report = JSON.parse((await runCli(['check', '--config', withSync, '--as-user', 'nobody', '--json'])).stdout) as CheckReport;
  expect(lineOf(report, 'sync ckpt', 0)).toMatchObject({ ok: false, reason: `path ${ckpt}: directory exists but is not readable by uid 65534` });
  expect(lineOf(report, 'sync ckpt', 1)).toMatchObject({ ok: false, reason: expect.stringContaining(`${closed} is not writable by uid 65534`) });

  const rootReport = JSON.parse((await runCli(['check', '--config', withSync, '--as-user', 'root', '--json'])).stdout) as CheckReport;
  expect(rootReport.checks.filter((entry) => entry.check === 'sync ckpt').map((entry) => entry.ok)).toEqual([true, true]);
});

withRoot('a config the service user cannot read is reported as such, with whom it was checked as', async () => {
  const { config } = await rootOnlySetup();
  chmodSync(config, 0o600);
  const result = await runCli(['check', '--config', config, '--as-user', 'nobody', '--json']);
  expect(result.code).toBe(78);
  const report = JSON.parse(result.stdout) as CheckReport;
  expect(report.checks.map((entry) => [entry.check, entry.ok])).toEqual([
    ['config', false],
    ['checked as', true],
  ]);
  expect(report.checks[0]?.reason).toContain(`cannot read ${config}: permission denied`);
});

withRoot('an unknown --as-user is a usage error (64)', async () => {
  const { config } = await rootOnlySetup();
  const result = await runCli(['check', '--config', config, '--as-user', 'no-such-user-for-preemptd']);
  expect(result.code).toBe(64);
  expect(result.stderr).toContain('--as-user no-such-user-for-preemptd: no such user');
});
