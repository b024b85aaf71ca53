import { Writable } from 'node:stream';
import { createLogger, registerSecret } from '../../src/lib/log.js';
import { formatTextLine, logFormatFor } from '../../src/lib/log-text.js';

describe('logFormatFor', () => {
  test('text on a terminal, JSON elsewhere; a format asked for wins either way', () => {
    expect(logFormatFor(undefined, true)).toBe('text');
    expect(logFormatFor(undefined, false)).toBe('json');
    expect(logFormatFor('json', true)).toBe('json');
    expect(logFormatFor('text', false)).toBe('text');
  });
});

describe('formatTextLine', () => {
  test('time, level and message first, then every other field as key=value, quoting what needs it', () => {
    const line = JSON.stringify({
      level: 'warn',
      severity: 'WARNING',
      time: '2026-12-06T05:24:20.958Z',
      name: 'preemptd',
      from: 'file:///backups/ckpt/',
      skipped: 2,
      note: 'two words',
      files: ['a', 'b'],
      msg: 'the snapshot is incomplete',
    });
    expect(formatTextLine(`${line}\n`)).toBe('05:24:20.958Z WARN  the snapshot is incomplete from=file:///backups/ckpt/ skipped=2 note="two words" files=["a","b"]\n');
  });

  test('an err shows its code and message, not its stack', () => {
    const line = JSON.stringify({ level: 'error', time: '2026-12-06T05:24:20.958Z', err: { type: 'PreemptdError', message: 'cannot read x', stack: 'PreemptdError: cannot read x\n    at y', code: 'ERR_RESTORE' }, msg: 'failed' });
    expect(formatTextLine(line)).toBe('05:24:20.958Z ERROR failed err="ERR_RESTORE: cannot read x"\n');
  });

  test('a line that is not JSON is passed through as it is', () => {
    expect(formatTextLine('not json\n')).toBe('not json\n');
  });
});

test('a text logger writes text lines, still scrubbed of secrets', () => {
  registerSecret('text-format-secret-value');
  let written = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      written += String(chunk);
      done();
    },
  });
  createLogger({ destination: sink, format: 'text' }).info({ path: '/x/text-format-secret-value' }, 'restored');
  expect(written).toMatch(/^\d\d:\d\d:\d\d\.\d\d\dZ INFO  restored path=\/x\/\[REDACTED\]\n$/);
});
