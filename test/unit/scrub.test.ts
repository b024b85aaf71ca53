import { Writable } from 'node:stream';
import { createLogger, registerSecret, scrubSecrets, scrubValue } from '../../src/lib/log.js';

// Secrets are registered process-wide; each test uses values no other test registers.

describe('scrubSecrets', () => {
  test('a secret is scrubbed in every form URL-encoding or JSON gives it', () => {
    const secret = 'p@ss w/rd?#é"';
    registerSecret(secret);
    const url = new URL('http://127.0.0.1/');
    url.pathname = `/drain/${secret}`;
    const forms = [
      secret,
      encodeURIComponent(secret),
      encodeURI(secret),
      new URLSearchParams({ t: secret }).toString().slice(2),
      url.pathname.slice('/drain/'.length),
      JSON.stringify(secret).slice(1, -1),
      JSON.stringify(encodeURIComponent(secret)).slice(1, -1),
    ];
    for (const form of forms) expect(scrubSecrets(`before ${form} after`)).toBe('before [REDACTED] after');
    expect(scrubSecrets(`GET 127.0.0.1${url.pathname}`)).toBe('GET 127.0.0.1/drain/[REDACTED]');
  });

  test('secrets of 1 to 3 characters are scrubbed as whole tokens only', () => {
    registerSecret('q7z');
    registerSecret('9');
    expect(scrubSecrets('pin q7z, path /x/q7z/y, query ?pin=q7z')).toBe('pin [REDACTED], path /x/[REDACTED]/y, query ?pin=[REDACTED]');
    expect(scrubSecrets('q7zz aq7z 19 91 99')).toBe('q7zz aq7z 19 91 99');
    expect(scrubSecrets('retry 9 of 10')).toBe('retry [REDACTED] of 10');
  });

  test('a secret of 4 or more characters is scrubbed inside words too', () => {
    registerSecret('k3y5');
    expect(scrubSecrets('xk3y5x')).toBe('x[REDACTED]x');
  });
});

describe('scrubValue', () => {
  test('scrubs every string in a detail and leaves numbers, booleans and keys alone', () => {
    registerSecret('deep-secret-value');
    registerSecret('8');
    const detail = { request: 'POST h/deep-secret-value', status: 8, nested: [{ body: 'got 8 and deep-secret-value' }], ok: true };
    expect(scrubValue(detail)).toEqual({ request: 'POST h/[REDACTED]', status: 8, nested: [{ body: 'got [REDACTED] and [REDACTED]' }], ok: true });
    expect(detail.request).toBe('POST h/deep-secret-value');
  });
});

describe('log lines', () => {
  test('a one-character secret is scrubbed from strings without breaking the JSON line', () => {
    registerSecret('5');
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger({ level: 'info', destination });
    log.info({ attempts: 5, note: 'pin 5 used' }, 'step 5 done');
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ attempts: 5, note: 'pin [REDACTED] used', msg: 'step [REDACTED] done' });
  });
});
