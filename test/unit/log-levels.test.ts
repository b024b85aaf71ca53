import { closeSync, fstatSync, openSync } from 'node:fs';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/lib/log.js';
import { writesToJournal } from '../../src/lib/log-levels.js';
import { TestResources } from '../helpers/resources.js';

const resources = new TestResources('preemptd-log-levels-');

/** A logger writing into an array of lines. */
function capture(journal: boolean) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger({ level: 'trace', destination, journal }), lines };
}

describe('log lines for the journal and for cloud logging agents', () => {
  test('every line carries the severity cloud agents read, beside its level', async () => {
    const { log, lines } = capture(false);
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((line) => JSON.parse(line) as { level: string; severity: string }).map(({ level, severity }) => `${level}=${severity}`)).toEqual([
      'debug=DEBUG',
      'info=INFO',
      'warn=WARNING',
      'error=ERROR',
      'fatal=CRITICAL',
    ]);
  });

  test('when stdout is the journal each line starts with its syslog priority, and only then', async () => {
    const journal = capture(true);
    journal.log.info('i');
    journal.log.warn('w');
    journal.log.error('e');
    const plain = capture(false);
    plain.log.warn('w');
    await new Promise((resolve) => setImmediate(resolve));
    expect(journal.lines.map((line) => line.slice(0, 12))).toEqual(['<6>{"level":', '<4>{"level":', '<3>{"level":']);
    expect(JSON.parse(journal.lines[1]!.slice(3))).toMatchObject({ level: 'warn', msg: 'w' });
    expect(plain.lines[0]!.startsWith('{')).toBe(true);
  });

  test('the journal is recognised by the device and inode in JOURNAL_STREAM, not by the variable alone', () => {
    const path = `${resources.tempDir()}/out`;
    const fd = openSync(path, 'w');
    resources.defer(() => closeSync(fd));
    const { dev, ino } = fstatSync(fd, { bigint: true });
    expect(writesToJournal({ JOURNAL_STREAM: `${dev}:${ino}` }, fd)).toBe(true);
    expect(writesToJournal({ JOURNAL_STREAM: `${dev}:${ino + 1n}` }, fd)).toBe(false);
    expect(writesToJournal({ JOURNAL_STREAM: 'garbage' }, fd)).toBe(false);
    expect(writesToJournal({}, fd)).toBe(false);
  });
});
