import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { StepSummary } from '../../src/notice/event.js';
import { Journal, JOURNAL_KEEP_NOTICES } from '../../src/notice/journal.js';
import { silentLogger } from '../../src/lib/log.js';
import type { Notice } from '../../src/notice/notice.js';

let root: string;
let stateDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'preemptd-journal-'));
  stateDir = join(root, 'state');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function notice(id = 'aws-terminate-00000000000000aa'): Notice {
  return {
    id,
    provider: 'aws',
    kind: 'terminate',
    deadline: new Date('2030-01-01T00:02:00.000Z'),
    detectedAt: new Date('2030-01-01T00:00:00.000Z'),
    instance: { id: 'i-0abc', zone: 'eu-west-1a' },
    raw: { action: 'terminate', time: '2030-01-01T00:02:00Z' },
  };
}

const okStep: StepSummary = { name: 'tell-ops', type: 'webhook', status: 'ok', ms: 42, detail: { attempts: 1, status: 200 } };
const failedStep: StepSummary = { name: 'drain', type: 'http', status: 'failed', ms: 10, error: 'HTTP 500' };

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean).map((line) => JSON.parse(line)));
      done();
    },
  });
  return { log: pino(sink), lines };
}

test('creates the state directory with mode 0700', async () => {
  await Journal.open(stateDir, silentLogger());
  expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
});

test('a fresh journal knows no notice', async () => {
  const journal = await Journal.open(stateDir, silentLogger());
  expect(journal.status('anything')).toBe('new');
  expect(journal.unfinished()).toEqual([]);
  expect(journal.finishedSteps('anything').size).toBe(0);
});

test('round trip: a reopened journal has the notices, statuses and steps written before', async () => {
  const first = await Journal.open(stateDir, silentLogger());
  await first.begin(notice('a'));
  await first.recordStep('a', okStep);
  await first.finish('a', { finishedAt: 1000, slackMs: 500 });
  await first.begin(notice('b'));
  await first.recordStep('b', failedStep);

  const second = await Journal.open(stateDir, silentLogger());
  expect(second.status('a')).toBe('done');
  expect(second.status('b')).toBe('in_progress');
  expect(second.finishedSteps('a')).toEqual(new Map([['tell-ops', okStep]]));
  expect(second.finishedSteps('b')).toEqual(new Map([['drain', failedStep]]));
});

test('after a restart mid-plan, unfinished notices come back whole with the steps they finished', async () => {
  const first = await Journal.open(stateDir, silentLogger());
  await first.begin(notice('a'));
  await first.recordStep('a', okStep);
  await first.begin(notice('b'));
  await first.finish('b', { finishedAt: 1, slackMs: null });

  const unfinished = (await Journal.open(stateDir, silentLogger())).unfinished();
  expect(unfinished).toHaveLength(1);
  expect(unfinished[0]!.notice).toEqual(notice('a'));
  expect(unfinished[0]!.finishedSteps).toEqual(new Map([['tell-ops', okStep]]));
});

test('begin on a notice already begun keeps its recorded steps', async () => {
  const journal = await Journal.open(stateDir, silentLogger());
  await journal.begin(notice('a'));
  await journal.recordStep('a', okStep);
  await journal.begin(notice('a'));
  expect(journal.finishedSteps('a').get('tell-ops')).toEqual(okStep);
});

test('writes leave only journal.json behind, with no temp files', async () => {
  const journal = await Journal.open(stateDir, silentLogger());
  await journal.begin(notice('a'));
  // Changes made without waiting are coalesced and all land on disk.
  void journal.recordStep('a', okStep);
  void journal.recordStep('a', failedStep);
  await journal.finish('a', { finishedAt: 5, slackMs: 1 });
  await journal.flush();
  expect(await readdir(stateDir)).toEqual(['journal.json']);
  const onDisk = JSON.parse(await readFile(join(stateDir, 'journal.json'), 'utf8'));
  expect(onDisk.notices[0].status).toBe('done');
  expect(Object.keys(onDisk.notices[0].steps)).toEqual(['tell-ops', 'drain']);
});

test('removes a temp file left by a crash before its rename', async () => {
  const journal = await Journal.open(stateDir, silentLogger());
  await journal.begin(notice('a'));
  await writeFile(join(stateDir, 'journal.json.tmp-deadbeef'), '{"version":1,"noti');
  const reopened = await Journal.open(stateDir, silentLogger());
  expect(await readdir(stateDir)).toEqual(['journal.json']);
  expect(reopened.status('a')).toBe('in_progress');
});

test.each([
  ['a torn (truncated) file', '{"version":1,"notices":[{"notice":{"id":"a","provider":"aws"'],
  ['a file that is not a journal', '{"hello":"world"}'],
  ['binary garbage', '\u0000\u0001\u0002'],
])('moves %s aside, logs why and starts empty', async (_what, content) => {
  await Journal.open(stateDir, silentLogger());
  await writeFile(join(stateDir, 'journal.json'), content);
  const { log, lines } = capturingLogger();
  const journal = await Journal.open(stateDir, log);
  expect(journal.status('a')).toBe('new');
  const files = await readdir(stateDir);
  const aside = files.find((name) => name.startsWith('journal.json.corrupt-'));
  expect(aside).toBeDefined();
  expect(await readFile(join(stateDir, aside!), 'utf8')).toBe(content);
  const error = lines.find((line) => line.level === 50);
  expect(error?.msg).toContain('journal is corrupt');
  expect(error?.movedTo).toBe(join(stateDir, aside!));
  // The agent carries on: the next write makes a good journal again.
  await journal.begin(notice('b'));
  expect((await Journal.open(stateDir, silentLogger())).status('b')).toBe('in_progress');
});

test(`keeps only the last ${JOURNAL_KEEP_NOTICES} notices`, async () => {
  const journal = await Journal.open(stateDir, silentLogger());
  for (let index = 0; index < JOURNAL_KEEP_NOTICES + 5; index++) void journal.begin(notice(`n${index}`));
  await journal.flush();
  const reopened = await Journal.open(stateDir, silentLogger());
  expect(reopened.status('n0')).toBe('new');
  expect(reopened.status('n4')).toBe('new');
  expect(reopened.status('n5')).toBe('in_progress');
  expect(reopened.status(`n${JOURNAL_KEEP_NOTICES + 4}`)).toBe('in_progress');
});

test('a step recorded for an unknown notice is ignored with a warning, not a crash', async () => {
  const { log, lines } = capturingLogger();
  const journal = await Journal.open(stateDir, log);
  await journal.recordStep('ghost', okStep);
  expect(journal.status('ghost')).toBe('new');
  expect(lines.some((line) => line.level === 40)).toBe(true);
});

test('an advisory notice resumed after a restart is still advisory, so its plan keeps sparing destructive steps', async () => {
  const first = await Journal.open(stateDir, silentLogger());
  await first.begin({ ...notice('m'), kind: 'maintenance', advisory: true });
  const second = await Journal.open(stateDir, silentLogger());
  expect(second.unfinished()[0]?.notice).toMatchObject({ id: 'm', kind: 'maintenance', advisory: true });
});
