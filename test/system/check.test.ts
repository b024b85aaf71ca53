import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { formatReport, runChecks, type CheckLine, type CheckReport } from '../../src/commands/check.js';
import { loadConfig } from '../helpers/config.js';
import { runCli } from '../helpers/cli.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';

const resources = new TestResources('preemptd-check-');

function check(file: string): Promise<CheckReport> {
  return runChecks({ loadConfig: () => loadConfig({ file, env: {} }) });
}

function linesFor(report: CheckReport, check: string): CheckLine[] {
  return report.checks.filter((line) => line.check === check);
}

test('passes on a working setup, and sends nothing and signals no one while checking', async () => {
  const dir = resources.tempDir();
  const metadata = await resources.simulator({ provider: 'aws' });
  const hooks = await resources.receiver({ status: 204 });
  const workload = await resources.workloads.start(join(dir, 'signals.log'));
  writeFileSync(join(dir, 'trainer.pid'), `${workload.pid}\n`);
  const file = writeConfigFile(dir, {
    provider: 'aws',
    metadataUrl: metadata.url,
    stateDir: join(dir, 'state'),
    steps: [
      { name: 'tell-ops', webhook: { url: hooks.url('/secret-path/token') } },
      { name: 'drain', http: { url: hooks.url('/drain'), method: 'POST' } },
      { name: 'stop-trainer', signal: { pidfile: join(dir, 'trainer.pid'), signal: 'SIGTERM' } },
      { name: 'by-name', signal: { match: `workload\\.mjs ${join(dir, 'signals.log')}` } },
    ],
  });

  const report = await check(file);

  expect(report.checks.filter((line) => !line.ok)).toEqual([]);
  expect(report.ok).toBe(true);
  expect(linesFor(report, 'metadata IMDSv2 token')[0]?.reason).toMatch(/^PUT \/latest\/api\/token answered in/);
  expect(linesFor(report, 'metadata spot/instance-action')[0]?.reason).toMatch(/HTTP 404/);
  expect(linesFor(report, 'instance')[0]?.reason).toContain('i-0123456789abcdef0');
  expect(linesFor(report, 'step stop-trainer')[0]?.reason).toBe(`pidfile ${join(dir, 'trainer.pid')}: names pid ${workload.pid}, which is running`);
  expect(linesFor(report, 'step by-name')[0]?.reason).toContain(`1 process: ${workload.pid}`);
  // Which notices each step runs for: destructive steps without on: sit out advisory notices.
  expect(linesFor(report, 'step tell-ops').at(-1)?.reason).toBe('runs on every kind but freeze');
  for (const name of ['drain', 'stop-trainer']) {
    expect(linesFor(report, `step ${name}`).at(-1)?.reason).toBe('runs on every kind but rebalance, advisory maintenance, freeze');
  }
  expect(linesFor(report, 'stateDir')[0]?.reason).toContain('will be created');
  // The webhook line names the host only: the rest of a webhook URL is a credential.
  expect(JSON.stringify(report)).not.toContain('secret-path');
  expect(hooks.requests).toEqual([]);
  expect(workload.received()).toEqual([]);
  expect(workload.child.exitCode).toBeNull();
});

test('fails for the right reasons: missing pidfile, stale pidfile, nothing matching, metadata refused', async () => {
  const dir = resources.tempDir();
  const exited = spawnSync(process.execPath, ['-e', '']).pid;
  writeFileSync(join(dir, 'stale.pid'), String(exited));
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const refusedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const file = writeConfigFile(dir, {
    provider: 'aws',
    metadataUrl: refusedUrl,
    stateDir: dir,
    steps: [
      { name: 'missing', signal: { pidfile: join(dir, 'absent.pid') } },
      { name: 'stale', signal: { pidfile: join(dir, 'stale.pid') } },
      { name: 'nothing', signal: { match: 'no-such-process-[0-9]{40}' } },
    ],
  });

  const report = await check(file);

  expect(report.ok).toBe(false);
  expect(report.configValid).toBe(true);
  expect(linesFor(report, 'config')[0]?.ok).toBe(true);
  expect(linesFor(report, 'step missing')[0]).toMatchObject({ ok: false, reason: expect.stringContaining('does not exist') });
  expect(linesFor(report, 'step stale')[0]).toMatchObject({ ok: false, reason: expect.stringContaining(`names pid ${exited}, which is not running (stale pidfile)`) });
  expect(linesFor(report, 'step nothing')[0]).toMatchObject({ ok: false, reason: expect.stringContaining('no process matches now') });
  expect(linesFor(report, 'metadata IMDSv2 token')[0]).toMatchObject({ ok: false, reason: expect.stringContaining('connection refused') });
  expect(linesFor(report, 'stateDir')[0]?.ok).toBe(true);
  expect(formatReport(report)).toMatch(/^✗ step missing +pidfile .*does not exist/m);
});

test('an IMDSv2 token PUT that never answers fails with the hop-limit hint', async () => {
  const dir = resources.tempDir();
  // Like IMDS seen from a pod with hop limit 1: the token PUT's answer never arrives.
  const imds = createServer((request, response) => {
    if (request.method === 'PUT') return;
    response.writeHead(401).end();
  });
  await new Promise<void>((resolve) => imds.listen(0, '127.0.0.1', resolve));
  resources.defer(() => {
    imds.closeAllConnections();
    return new Promise<void>((resolve) => imds.close(() => resolve()));
  });
  const file = writeConfigFile(dir, {
    provider: 'aws',
    metadataUrl: `http://127.0.0.1:${(imds.address() as AddressInfo).port}`,
    stateDir: dir,
    aws: { tokenTimeout: '300ms' },
  });

  const report = await check(file);

  const token = linesFor(report, 'metadata IMDSv2 token')[0];
  expect(token?.ok).toBe(false);
  expect(token?.reason).toContain('hop limit');
  expect(token?.reason).toContain('--http-put-response-hop-limit 2');
  expect(report.ok).toBe(false);
});

test('a notice pending at the time of the check fails it', async () => {
  const dir = resources.tempDir();
  const metadata = await resources.simulator({ provider: 'aws' });
  metadata.trigger({ kind: 'terminate', leadMs: 120_000 });
  const report = await check(writeConfigFile(dir, { provider: 'aws', metadataUrl: metadata.url, stateDir: dir }));
  expect(linesFor(report, 'notice')[0]).toMatchObject({ ok: false, reason: expect.stringContaining('a terminate notice is pending right now') });
});

test('on GCP it reads upcoming-maintenance and says what a Spot preemption leaves the plan', async () => {
  const dir = resources.tempDir();
  const metadata = await resources.simulator({ provider: 'gcp' });
  const withNotice = await check(writeConfigFile(dir, { provider: 'gcp', metadataUrl: metadata.url, stateDir: dir, gcp: { preemptionNoticeDuration: '120s' } }));
  expect(withNotice.ok).toBe(true);
  expect(linesFor(withNotice, 'metadata instance/upcoming-maintenance')[0]).toMatchObject({ ok: true, reason: expect.stringContaining('HTTP 200') });
  expect(linesFor(withNotice, 'gcp preemption budget')[0]?.reason).toMatch(/^2m30s from preempted=TRUE: gcp.preemptionNoticeDuration 2m0s .*skipGuestOsShutdown removes the 30 s$/);
  const without = await check(writeConfigFile(dir, { provider: 'gcp', metadataUrl: metadata.url, stateDir: dir }));
  expect(linesFor(without, 'gcp preemption budget')[0]?.reason).toMatch(/^30s from preempted=TRUE: no preemption notice duration/);
});


/** Never the instance profile through IMDS, and no shared files: only the test's keys. */
function useTestAwsCredentials(dir: string): void {
  Object.assign(process.env, {
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    AWS_CONFIG_FILE: join(dir, 'no-config'),
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  });
}
describe('preemptd check (the command)', () => {
  test('exits 0 with a ✓ table when all is well and 1 when a check fails; --json for machines', async () => {
    const dir = resources.tempDir();
    const metadata = await resources.simulator({ provider: 'aws' });
    const good = writeConfigFile(dir, { provider: 'aws', metadataUrl: metadata.url, stateDir: dir, server: { enabled: false } });
    const passed = await runCli(['check', '--config', good]);
    expect(passed.stderr).toBe('');
    expect(passed.code).toBe(0);
    expect(passed.stdout).toMatch(/^✓ config +.*valid, 0 steps$/m);
    expect(passed.stdout).toMatch(/^✓ metadata spot\/instance-action +nothing there \(HTTP 404/m);
    expect(passed.stdout).toContain('all checks passed');

    const bad = writeConfigFile(resources.tempDir(), { provider: 'aws', metadataUrl: metadata.url, stateDir: dir, steps: [{ name: 'x', signal: { pidfile: join(dir, 'nope.pid') } }] });
    const failed = await runCli(['check', '--config', bad, '--json']);
    expect(failed.code).toBe(1);
    const report = JSON.parse(failed.stdout) as CheckReport;
    expect(report.ok).toBe(false);
    expect(report.checks.find((line) => line.check === 'step x')).toMatchObject({ ok: false });
  });

  test('an invalid config is reported with its field path and exit code 78', async () => {
    const file = writeConfigFile(resources.tempDir(), { pollInterval: 'soon' });
    const result = await runCli(['check', '--config', file, '--json']);
    expect(result.code).toBe(78);
    const report = JSON.parse(result.stdout) as CheckReport;
    expect(report).toMatchObject({ ok: false, configValid: false });
    expect(report.checks[0]?.reason).toContain('pollInterval: got "soon"');
  });
});

describe('step checks for exec and snapshot', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  });

  test('exec: the program is found on PATH or by path, and its cwd exists', async () => {
    const dir = resources.tempDir();
    const file = writeConfigFile(dir, {
      provider: 'aws',
      metadataUrl: (await resources.simulator({ provider: 'aws' })).url,
      stateDir: dir,
      steps: [
        { name: 'ok', exec: { command: ['sh', '-c', 'exit 0'], cwd: dir } },
        { name: 'absent', exec: { command: ['no-such-program-for-preemptd'] } },
        { name: 'bad-cwd', exec: { command: ['/bin/sh'], cwd: join(dir, 'missing') } },
      ],
    });
    const report = await check(file);
    expect(linesFor(report, 'step ok').map((line) => line.ok)).toEqual([true, true, true]);
    expect(linesFor(report, 'step ok')[0]?.reason).toMatch(/^program sh: found at \/.*\/sh$/);
    expect(linesFor(report, 'step absent')[0]).toMatchObject({ ok: false, reason: 'program no-such-program-for-preemptd: not found on PATH' });
    expect(linesFor(report, 'step bad-cwd')[1]).toMatchObject({ ok: false, reason: `directory ${join(dir, 'missing')}: does not exist` });
  });

  test('snapshot: paths exist, a file:// destination is writable, S3 credentials resolve or say why not', async () => {
    const dir = resources.tempDir();
    useTestAwsCredentials(dir);
    const steps = (to: string) => [{ name: 'save', snapshot: { paths: [dir, join(dir, 'ckpt-not-yet')], to, region: 'eu-west-1', endpoint: 'http://127.0.0.1:9' } }];
    const metadataUrl = (await resources.simulator({ provider: 'aws' })).url;
    const toFile = await check(writeConfigFile(dir, { provider: 'aws', metadataUrl, stateDir: dir, steps: steps(`file://${dir}/snapshots/{instanceId}/`) }));
    expect(linesFor(toFile, 'step save').map((line) => [line.ok, line.reason])).toEqual([
      [true, `path ${dir}: directory exists`],
      [false, `path ${join(dir, 'ckpt-not-yet')}: does not exist (yet?)`],
      [true, `destination file://${dir}/snapshots/{instanceId}/: does not exist yet; it will be created under ${dir}`],
      [true, 'runs on every kind but freeze'],
    ]);

    const toS3 = await check(writeConfigFile(resources.tempDir(), { provider: 'aws', metadataUrl, stateDir: dir, steps: steps('s3://my-bucket/ckpt/{noticeId}/') }));
    expect(linesFor(toS3, 'step save')[2]).toMatchObject({ ok: true, reason: 'destination s3://my-bucket/ckpt/{noticeId}/: AWS credentials resolve (SDK default chain), region eu-west-1 (set in the step)' });

    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const noCredentials = await check(writeConfigFile(resources.tempDir(), { provider: 'aws', metadataUrl, stateDir: dir, steps: steps('s3://my-bucket/ckpt/') }));
    expect(linesFor(noCredentials, 'step save')[2]).toMatchObject({ ok: false, reason: expect.stringMatching(/^destination s3:\/\/my-bucket\/ckpt\/: credentials do not resolve: /) });
  });

  test('sync: each entry is checked as a snapshot step: paths exist, a file:// destination is writable, S3 credentials resolve', async () => {
    const dir = resources.tempDir();
    useTestAwsCredentials(dir);
    const metadataUrl = (await resources.simulator({ provider: 'aws' })).url;
    const report = await check(
      writeConfigFile(dir, {
        provider: 'aws',
        metadataUrl,
        stateDir: dir,
        sync: {
          local: { paths: [dir, join(dir, 'ckpt-not-yet')], to: `file://${dir}/repo/{hostname}/` },
          bucket: { paths: [join(dir, '*.pt')], to: 's3://my-bucket/ckpt/', region: 'eu-west-1', endpoint: 'http://127.0.0.1:9' },
        },
        steps: [{ name: 'save', snapshot: { sync: 'local' } }],
      }),
    );
    expect(linesFor(report, 'sync local').map((line) => [line.ok, line.reason])).toEqual([
      [true, `path ${dir}: directory exists`],
      [false, `path ${join(dir, 'ckpt-not-yet')}: does not exist (yet?)`],
      [true, `destination file://${dir}/repo/{hostname}/: does not exist yet; it will be created under ${dir}`],
    ]);
    expect(linesFor(report, 'sync bucket').map((line) => [line.ok, line.reason])).toEqual([
      [true, `path ${join(dir, '*.pt')}: a pattern: matched when the step runs`],
      [true, 'destination s3://my-bucket/ckpt/: AWS credentials resolve (SDK default chain), region eu-west-1 (set in the step)'],
    ]);
    expect(linesFor(report, 'step save')[0]).toMatchObject({ ok: true, reason: 'sync local: its paths and destination are checked under "sync local"' });
    expect(report.ok).toBe(false);
  });
});

describe('no false alarms', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  });

  test("an s3:// destination without region uses the instance's, or says the notice's is used at run time", async () => {
    const dir = resources.tempDir();
    for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE']) delete process.env[name];
    useTestAwsCredentials(dir);
    const steps = [{ name: 'save', snapshot: { paths: [dir], to: 's3://my-bucket/ckpt/', endpoint: 'http://127.0.0.1:9' } }];
    const metadata = await resources.simulator({ provider: 'aws' });
    const here = await check(writeConfigFile(dir, { provider: 'aws', metadataUrl: metadata.url, stateDir: dir, steps }));
    expect(linesFor(here, 'step save')[1]).toEqual({
      check: 'step save',
      ok: true,
      reason: "destination s3://my-bucket/ckpt/: AWS credentials resolve (SDK default chain), region us-east-1 (this instance's, as the notice will say)",
    });

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const refusedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unknown = await check(writeConfigFile(resources.tempDir(), { provider: 'aws', metadataUrl: refusedUrl, stateDir: dir, steps }));
    expect(linesFor(unknown, 'step save')[1]).toMatchObject({
      ok: true,
      reason: "destination s3://my-bucket/ckpt/: AWS credentials resolve (SDK default chain), no region known here: the notice's region is used at run time (or set region: in the step)",
    });
  });

  test('a gpu signal target on a node without nvidia-smi is no failure: one config serves GPU and CPU nodes', async () => {
    const dir = resources.tempDir();
    process.env.PATH = dir;
    const metadata = await resources.simulator({ provider: 'aws' });
    const report = await check(writeConfigFile(dir, { provider: 'aws', metadataUrl: metadata.url, stateDir: dir, steps: [{ name: 'gpu', signal: { gpu: true } }] }));
    expect(linesFor(report, 'step gpu')[0]).toEqual({ check: 'step gpu', ok: true, reason: 'GPU processes: no GPU processes here (nvidia-smi absent): on this node the step signals no one' });
    expect(report.ok).toBe(true);
  });

  test('an http step polling `until` on the same host lists that host once', async () => {
    const dir = resources.tempDir();
    const metadata = await resources.simulator({ provider: 'aws' });
    const steps = [{ name: 'drain', http: { url: 'http://127.0.0.1:8080/drain', until: { url: 'http://127.0.0.1:8080/drained', status: 200 } } }];
    const report = await check(writeConfigFile(dir, { provider: 'aws', metadataUrl: metadata.url, stateDir: dir, steps }));
    expect(linesFor(report, 'step drain').map((entry) => entry.reason)).toEqual(['host 127.0.0.1:8080: resolves to 127.0.0.1', expect.stringMatching(/^runs on /)]);
  });
});
