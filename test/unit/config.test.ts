import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { duration, httpUrl, signalName } from '../../src/config/fields.js';
import { overridesFromEnv, overridesFromFlags, parseConfigText } from '../../src/config/load.js';
import { compileConfig, loadConfig } from '../helpers/config.js';
import { envName, envOverrides } from '../../src/config/overrides.js';
import { settingPaths } from '../../src/config/schema.js';
import { ConfigError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/log.js';
import type { AnyStepType } from '../../src/steps/types.js';
import { STEP_TYPES } from '../../src/steps/registry.js';

/** Small step types of our own, so these tests do not depend on the real registry. */
function fakeType(type: string, schema: z.ZodType): AnyStepType {
  return { type, schema, destructive: false, run: async () => undefined, describe: () => type };
}
const FAKE_TYPES = [
  fakeType('notify', z.strictObject({ url: httpUrl(), wait: duration().prefault('1s'), chat: z.union([z.string().min(1), z.number().int()]).optional() })),
  fakeType('poke', z.strictObject({ signal: signalName().default('SIGTERM') })),
];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'preemptd-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
function writeConfig(text: string, extension = 'yaml'): string {
  fileCount += 1;
  const file = join(dir, `config-${fileCount}.${extension}`);
  writeFileSync(file, text);
  return file;
}

function load(text: string, options: Omit<Parameters<typeof loadConfig>[0], 'file'> = {}) {
  return loadConfig({ env: {}, stepTypes: FAKE_TYPES, ...options, file: writeConfig(text) });
}

/** The ConfigError a load must fail with. */
async function failure(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

function issueAt(error: ConfigError, path: string): string {
  const issue = error.issues.find((candidate) => candidate.path === path);
  if (!issue) throw new Error(`no issue at ${path}; issues: ${JSON.stringify(error.issues)}`);
  return issue.message;
}

describe('defaults and compilation', () => {
  test('a config with only steps gets every default, with durations compiled to ms', async () => {
    const config = await load('steps:\n  - name: tell\n    notify: { url: "http://127.0.0.1:9/hook" }\n');
    expect(config).toMatchObject({
      provider: 'auto',
      metadataUrl: null,
      pollIntervalMs: 1000,
      requestTimeoutMs: 2000,
      stateDir: '/var/lib/preemptd',
      safetyMarginMs: 5000,
      minimumBudgetMs: 10_000,
      logLevel: 'info',
      aws: { allowImdsV1: false, tokenTtlSeconds: 21600, tokenTimeoutMs: 2000 },
      gcp: { hangTimeoutSeconds: 60 },
      azure: { ackWhenDone: false, firstCallTimeoutMs: 120_000 },
      alibaba: { hardened: true, tokenTtlSeconds: 21600 },
      server: { enabled: true, host: '127.0.0.1', port: 9464 },
    });
    expect(config.readiness.notReadyOn).not.toContain('rebalance');
    expect(config.readiness.notReadyOn).toContain('terminate');
    expect(config.steps).toEqual([
      { name: 'tell', type: 'notify', options: { url: 'http://127.0.0.1:9/hook', wait: 1000 }, after: [], on: null, timeoutMs: 60_000 },
    ]);
    expect(config.file).toMatch(/config-\d+\.yaml$/);
  });

  test('given values are compiled: durations, sections, after and on', async () => {
    const config = await load(
      [
        'provider: gcp',
        'metadataUrl: http://127.0.0.1:8181',
        'pollInterval: 250ms',
        'safetyMargin: 0s',
        'aws: { tokenTtl: 60 }',
        'gcp: { hangTimeout: 30 }',
        'steps:',
        '  - { name: a, poke: {} }',
        '  - { name: b.2, after: [a], on: [terminate, preempt], timeout: 1.5m, poke: { signal: usr1 } }',
      ].join('\n'),
    );
    expect(config.provider).toBe('gcp');
    expect(config.metadataUrl).toBe('http://127.0.0.1:8181');
    expect(config.pollIntervalMs).toBe(250);
    expect(config.safetyMarginMs).toBe(0);
    expect(config.aws.tokenTtlSeconds).toBe(60);
    expect(config.aws.tokenTimeoutMs).toBe(2000);
    expect(config.gcp.hangTimeoutSeconds).toBe(30);
    expect(config.steps[1]).toEqual({
      name: 'b.2',
      type: 'poke',
      options: { signal: 'SIGUSR1' },
      after: ['a'],
      on: ['terminate', 'preempt'],
      timeoutMs: 90_000,
    });
  });

  test('a config without steps is legal', async () => {
    const config = await load('provider: aws\n');
    expect(config.steps).toEqual([]);
  });

  test('a JSON file is accepted', async () => {
    const file = writeConfig(JSON.stringify({ provider: 'azure', pollInterval: '2s', steps: [{ name: 'x', poke: { signal: 'SIGINT' } }] }), 'json');
    const config = await loadConfig({ file, env: {}, stepTypes: FAKE_TYPES });
    expect(config.provider).toBe('azure');
    expect(config.pollIntervalMs).toBe(2000);
    expect(config.steps[0]?.options).toEqual({ signal: 'SIGINT' });
  });

  test('no file at all gives the defaults', async () => {
    const config = await loadConfig({ env: {}, stepTypes: FAKE_TYPES });
    expect(config.file).toBeUndefined();
    expect(config.pollIntervalMs).toBe(1000);
  });

  test('compileConfig compiles a parsed object without touching the file system', () => {
    const config = compileConfig({ pollInterval: '3s', steps: [{ name: 'p', poke: {} }] }, { file: 'inline.yaml', stepTypes: FAKE_TYPES });
    expect(config.file).toBe('inline.yaml');
    expect(config.pollIntervalMs).toBe(3000);
    expect(() => compileConfig({ pollInterval: 'soon' }, { stepTypes: FAKE_TYPES })).toThrow(ConfigError);
  });
});

describe('top-level settings', () => {
  test('an unknown top-level key is rejected with its name and the known keys', async () => {
    const error = await failure(load('provider: aws\npolInterval: 2s\n'));
    expect(issueAt(error, 'polInterval')).toMatch(/^unknown key; did you mean pollInterval\? \(expected one of provider, metadataUrl, pollInterval/);
  });

  test('an unknown key inside a section is rejected with its path', async () => {
    const error = await failure(load('aws:\n  allowImdsV2: true\n'));
    expect(issueAt(error, 'aws.allowImdsV2')).toContain('unknown key');
    expect(issueAt(error, 'aws.allowImdsV2')).toContain('allowImdsV1');
  });

  test('a duration in words is rejected with the value and the expected form', async () => {
    const error = await failure(load('pollInterval: 5 minutes\n'));
    expect(issueAt(error, 'pollInterval')).toBe('got "5 minutes": expected a duration such as 500ms, 5s, 2m or 1h');
  });

  test('a bare number is not a duration anywhere (only 0 stands alone), and the message suggests a unit', async () => {
    const error = await failure(load('pollInterval: 5\nsafetyMargin: "7"\nsteps:\n  - name: a\n    notify: { url: "http://127.0.0.1:9/", wait: 20 }\n'));
    expect(issueAt(error, 'pollInterval')).toBe('got 5: a duration needs a unit: write 5s for seconds (or 5ms, 5m, 5h); only 0 stands alone');
    expect(issueAt(error, 'safetyMargin')).toContain('got "7": a duration needs a unit: write 7s');
    expect(issueAt(error, 'steps[0].notify.wait')).toContain('got 20: a duration needs a unit: write 20s');
    const fromEnv = await failure(load('provider: aws\n', { env: { PREEMPTD_POLL_INTERVAL: '3' } }));
    expect(issueAt(fromEnv, 'pollInterval')).toContain('write 3s for seconds (or 3ms, 3m, 3h); only 0 stands alone (from PREEMPTD_POLL_INTERVAL)');
    const fromFlag = await failure(load('provider: aws\n', { overrides: overridesFromFlags([], { pollInterval: '3' }) }));
    expect(issueAt(fromFlag, 'pollInterval')).toContain('write 3s for seconds (or 3ms, 3m, 3h); only 0 stands alone (from --poll-interval)');
    const zero = await load('safetyMargin: 0\nminimumBudget: 1.5s\n', { env: { PREEMPTD_SAFETY_MARGIN: '0' } });
    expect(zero.safetyMarginMs).toBe(0);
  });

  test('a negative interval is rejected, not clamped', async () => {
    const error = await failure(load('pollInterval: -1s\n'));
    expect(issueAt(error, 'pollInterval')).toContain('got "-1s": a duration cannot be negative');
  });

  test('a zero poll interval is rejected', async () => {
    const error = await failure(load('pollInterval: 0s\n'));
    expect(issueAt(error, 'pollInterval')).toContain('expected a duration greater than 0');
  });

  test('a non-http metadata URL is rejected with its scheme', async () => {
    const error = await failure(load('metadataUrl: ftp://127.0.0.1/meta\n'));
    expect(issueAt(error, 'metadataUrl')).toBe('got scheme "ftp:": expected an http:// or https:// URL');
  });

  test('out-of-range and fractional whole-second settings are rejected, not clamped', async () => {
    const error = await failure(load('aws: { tokenTtl: 21601 }\ngcp: { hangTimeout: 1.5 }\n'));
    expect(issueAt(error, 'aws.tokenTtl')).toBe('got 21601: expected at most 21600');
    expect(issueAt(error, 'gcp.hangTimeout')).toBe('got 1.5: expected a whole number');
  });

  test('gcp.preemptionNoticeDuration takes the durations GCE accepts, 0s or 120s, and nothing else', async () => {
    const error = await failure(load('gcp: { preemptionNoticeDuration: 60s }\n'));
    expect(issueAt(error, 'gcp.preemptionNoticeDuration')).toBe('got 1m0s: expected 0s or 120s, the Spot preemption notice durations GCE accepts');
    const config = await load('gcp: { preemptionNoticeDuration: 2m }\n');
    expect(config.gcp.preemptionNoticeDurationMs).toBe(120_000);
  });

  test('an empty stateDir is rejected', async () => {
    const error = await failure(load('stateDir: ""\n'));
    expect(issueAt(error, 'stateDir')).toBe('got "": expected a non-empty string');
  });

  test('server.listen is compiled to host and port, IPv6 in brackets', async () => {
    const config = await load('server: { listen: "[::1]:0" }\nreadiness: { notReadyOn: [preempt] }\n');
    expect(config.server).toEqual({ enabled: true, host: '::1', port: 0 });
    expect(config.readiness.notReadyOn).toEqual(['preempt']);
    const error = await failure(load('server: { listen: "9464" }\n'));
    expect(issueAt(error, 'server.listen')).toMatch(/^got "9464": expected host:port/);
  });

  test('a bad enum value lists the accepted values', async () => {
    const error = await failure(load('provider: oracle\nlogLevel: loud\n'));
    expect(issueAt(error, 'provider')).toBe('got "oracle": expected one of auto, aws, gcp, azure, alibaba, tencent, kubernetes');
    expect(issueAt(error, 'logLevel')).toContain('got "loud": expected one of fatal, error, warn, info, debug, trace, silent');
  });

  test('every issue is reported at once, and the message names the file', async () => {
    const error = await failure(load('provider: oracle\npollInterval: soon\nextra: 1\n'));
    expect(error.issues.map((issue) => issue.path).sort()).toEqual(['extra', 'pollInterval', 'provider']);
    expect(error.message).toMatch(/^invalid config .*config-\d+\.yaml:\n/);
    expect(error.code).toBe('ERR_CONFIG');
  });
});

describe('file problems', () => {
  test('malformed YAML reports the file, line and column', async () => {
    const file = writeConfig('provider: aws\nsteps:\n  - name: a\n    poke: [1,\n  x: 2\n');
    const error = await failure(loadConfig({ file, env: {}, stepTypes: FAKE_TYPES }));
    expect(error.issues[0]?.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:3: `));
  });

  test('a duplicate key is a syntax error with its position', () => {
    expect(() => parseConfigText('provider: aws\nprovider: gcp\n', 'dup.yaml')).toThrow(/dup\.yaml:2:1: Map keys must be unique/);
  });

  test('an empty file says it is empty and what is expected', async () => {
    const error = await failure(load(''));
    expect(error.issues[0]?.message).toMatch(/config-\d+\.yaml is empty: expected a mapping of settings/);
  });

  test('a file of only comments counts as empty', () => {
    expect(() => parseConfigText('# nothing yet\n\n# really\n', 'c.yaml')).toThrow(/c\.yaml is empty: expected a mapping/);
  });

  test('a top-level list or scalar asks for a mapping', () => {
    expect(() => parseConfigText('- name: a\n', 'l.yaml')).toThrow(/l\.yaml: got a list at the top level: expected a mapping/);
    expect(() => parseConfigText('just words\n', 's.yaml')).toThrow(/s\.yaml: got "just words" at the top level: expected a mapping/);
  });

  test('a missing file is named with its path', async () => {
    const file = join(dir, 'nope.yaml');
    const error = await failure(loadConfig({ file, env: {} }));
    expect(error.issues[0]?.message).toBe(`cannot read ${file}: no such file; expected a YAML or JSON config file`);
  });
});

describe('steps', () => {
  test('an unknown step type is named and the known types are listed', async () => {
    const error = await failure(load('steps:\n  - name: a\n    webhok: { url: "http://127.0.0.1/x" }\n'));
    expect(issueAt(error, 'steps[0].webhok')).toBe('unknown key (expected a step type (notify, poke) or one of name, after, on, timeout)');
    expect(error.issues).toHaveLength(1);
  });

  test('a step without any type lists the types', async () => {
    const error = await failure(load('steps:\n  - name: a\n'));
    expect(issueAt(error, 'steps[0]')).toBe('no step type: expected exactly one of notify, poke');
  });

  test('a step with two types is rejected', async () => {
    const error = await failure(load('steps:\n  - name: a\n    poke: {}\n    notify: { url: "http://127.0.0.1/x" }\n'));
    expect(issueAt(error, 'steps[0]')).toBe('got poke and notify: a step has exactly one type; split it into 2 steps');
  });

  test('a step without a name, or with a bad one, is rejected', async () => {
    const error = await failure(load('steps:\n  - poke: {}\n  - { name: "a b", poke: {} }\n'));
    expect(issueAt(error, 'steps[0].name')).toBe('required: every step needs a name');
    expect(issueAt(error, 'steps[1].name')).toBe('got "a b": expected letters, digits, -, _ or . only');
  });

  test('a duplicate step name names both entries', async () => {
    const error = await failure(load('steps:\n  - { name: a, poke: {} }\n  - { name: b, poke: {} }\n  - { name: a, poke: {} }\n'));
    expect(issueAt(error, 'steps[2].name')).toBe('got "a": steps[0] already has this name; step names must be unique');
  });

  test('after: naming a missing step is rejected with the known names', async () => {
    const error = await failure(load('steps:\n  - { name: a, poke: {} }\n  - { name: b, after: [a, c], poke: {} }\n'));
    expect(issueAt(error, 'steps[1].after[1]')).toBe('got "c": no step has this name (steps: a, b)');
  });

  test('a step after itself is rejected', async () => {
    const error = await failure(load('steps:\n  - { name: a, after: [a], poke: {} }\n'));
    expect(issueAt(error, 'steps[0].after[0]')).toBe('got "a": a step cannot run after itself');
  });

  test('a cycle in after: is named', async () => {
    const error = await failure(
      load('steps:\n  - { name: a, after: [c], poke: {} }\n  - { name: b, after: [a], poke: {} }\n  - { name: c, after: [b], poke: {} }\n  - { name: d, after: [a], poke: {} }\n'),
    );
    expect(error.issues).toEqual([{ path: 'steps[0].after', message: 'steps wait for each other in a cycle: a -> c -> b -> a' }]);
  });

  test('a two-step cycle is named once', async () => {
    const error = await failure(load('steps:\n  - { name: a, after: [b], poke: {} }\n  - { name: b, after: [a], poke: {} }\n'));
    expect(error.issues).toEqual([{ path: 'steps[0].after', message: 'steps wait for each other in a cycle: a -> b -> a' }]);
  });

  test('an unknown notice kind in on: lists the kinds', async () => {
    const error = await failure(load('steps:\n  - { name: a, on: [terminate, evict], poke: {} }\n'));
    expect(issueAt(error, 'steps[0].on[1]')).toMatch(/^got "evict": expected one of terminate, stop, hibernate/);
  });

  test('after: given as a single name asks for a list', async () => {
    const error = await failure(load('steps:\n  - { name: a, poke: {} }\n  - { name: b, after: a, poke: {} }\n'));
    expect(issueAt(error, 'steps[1].after')).toBe('got "a": expected a list');
  });

  test("a step type's own issues are reported under the step and type path", async () => {
    const error = await failure(load('steps:\n  - { name: a, poke: {} }\n  - name: b\n    poke: { signal: SIGFOO }\n'));
    expect(issueAt(error, 'steps[1].poke.signal')).toBe('got "SIGFOO": expected a signal name such as SIGTERM, SIGINT, SIGUSR1, SIGHUP or SIGKILL');
  });

  test('a non-http step URL is rejected under its path', async () => {
    const error = await failure(load('steps:\n  - { name: a, notify: { url: "ftp://127.0.0.1/x" } }\n'));
    expect(issueAt(error, 'steps[0].notify.url')).toBe('got scheme "ftp:": expected an http:// or https:// URL');
  });

  test('a bad credential-like value (a URL) is not repeated in its message', async () => {
    const error = await failure(load('steps:\n  - { name: a, notify: { url: "hooks.example.com/services/T0/B0/sEcReTpArT" } }\n'));
    expect(issueAt(error, 'steps[0].notify.url')).toBe('got (value hidden): expected an absolute http:// or https:// URL');
    expect(error.message).not.toContain('sEcReTpArT');
  });

  test('an unknown key inside step options is rejected with its path', async () => {
    const error = await failure(load('steps:\n  - { name: a, notify: { url: "http://127.0.0.1/x", retry: 3 } }\n'));
    expect(issueAt(error, 'steps[0].notify.retry')).toBe('unknown key (expected one of url, wait, chat)');
  });

  test('a near-miss key gets a suggestion', async () => {
    const error = await failure(load('steps:\n  - { name: a, pokee: {} }\n'));
    expect(issueAt(error, 'steps[0].pokee')).toBe('unknown key; did you mean poke? (expected a step type (notify, poke) or one of name, after, on, timeout)');
  });

  test('a value that fits no form of a union says which forms were expected', async () => {
    const error = await failure(load('steps:\n  - { name: a, notify: { url: "http://127.0.0.1/x", chat: true } }\n  - { name: b, notify: { url: "http://127.0.0.1/x", chat: "" } }\n'));
    expect(issueAt(error, 'steps[0].notify.chat')).toBe('got true: expected a string or a number');
    expect(issueAt(error, 'steps[1].notify.chat')).toBe('got "": expected a non-empty string');
  });

  test('a step entry that is not a mapping is rejected', async () => {
    const error = await failure(load('steps:\n  - tell-ops\n'));
    expect(issueAt(error, 'steps[0]')).toBe('got "tell-ops": expected a mapping with a name and one step type (notify, poke)');
  });
});

const realSignal = STEP_TYPES.find((stepType) => stepType.type === 'signal');
const realWebhook = STEP_TYPES.find((stepType) => stepType.type === 'webhook');
(realSignal ? describe : describe.skip)('with the real step registry', () => {
  test('the real signal step rejects an unknown signal name under its path', async () => {
    const file = writeConfig('steps:\n  - name: stop\n    signal: { pidfile: /run/x.pid, signal: SIGFOO }\n');
    const error = await failure(loadConfig({ file, env: {} }));
    expect(issueAt(error, 'steps[0].signal.signal')).toMatch(/^got "SIGFOO": expected a signal name/);
  });

  test('the real signal step compiles a valid entry', async () => {
    const file = writeConfig('steps:\n  - name: stop\n    signal: { pidfile: /run/x.pid, signal: usr1 }\n');
    const config = await loadConfig({ file, env: {} });
    expect(config.steps[0]).toMatchObject({ type: 'signal', options: { signal: 'SIGUSR1' } });
  });

  test('an unknown step type lists the real types', async () => {
    const file = writeConfig('steps:\n  - name: x\n    slack: {}\n');
    const error = await failure(loadConfig({ file, env: {} }));
    expect(issueAt(error, 'steps[0].slack')).toContain(STEP_TYPES.map((stepType) => stepType.type).join(', '));
  });
});

(realWebhook ? describe : describe.skip)('with the real webhook step', () => {
  test('a misspelt webhook key is matched to the real type', async () => {
    const file = writeConfig('steps:\n  - name: tell\n    webhok: { url: "http://127.0.0.1:9/hook" }\n');
    const error = await failure(loadConfig({ file, env: {} }));
    expect(issueAt(error, 'steps[0].webhok')).toMatch(/^unknown key; did you mean webhook\?/);
  });

  test('a non-http webhook URL is rejected under its path', async () => {
    const file = writeConfig('steps:\n  - name: tell\n    webhook: { url: "ftp://127.0.0.1/hook" }\n');
    const error = await failure(loadConfig({ file, env: {} }));
    expect(issueAt(error, 'steps[0].webhook.url')).toBe('got scheme "ftp:": expected an http:// or https:// URL');
  });
});

describe('references', () => {
  test('${env:NAME} is resolved whole or embedded', async () => {
    const config = await load('steps:\n  - name: a\n    notify: { url: "http://127.0.0.1:${env:HOOK_PORT}/${env:HOOK_PATH}" }\n', {
      env: { HOOK_PORT: '8123', HOOK_PATH: 'hooks/abc' },
    });
    expect(config.steps[0]?.options).toMatchObject({ url: 'http://127.0.0.1:8123/hooks/abc' });
  });

  test('a missing ${env:X} names the field and the variable', async () => {
    const error = await failure(load('steps:\n  - name: a\n    notify: { url: "${env:SLACK_HOOK}" }\n'));
    expect(error.issues).toEqual([{ path: 'steps[0].notify.url', message: '${env:SLACK_HOOK}: environment variable SLACK_HOOK is not set' }]);
  });

  test('${file:path} is read, its trailing newline trimmed, relative paths from the config folder', async () => {
    writeFileSync(join(dir, 'hook-url'), 'http://127.0.0.1:9/from-file\n');
    const config = await load('metadataUrl: "${file:./hook-url}"\nstateDir: "${file:' + join(dir, 'hook-url') + '}-state"\n');
    expect(config.metadataUrl).toBe('http://127.0.0.1:9/from-file');
    expect(config.stateDir).toBe('http://127.0.0.1:9/from-file-state');
  });

  test('an unreadable ${file:...} names the field and the file', async () => {
    const missing = join(dir, 'no-such-secret');
    const error = await failure(load(`stateDir: "\${file:${missing}}"\n`));
    expect(error.issues).toEqual([{ path: 'stateDir', message: `\${file:${missing}}: cannot read ${missing}: no such file` }]);
  });

  test('a ${file:...} over 1 MiB or that is a directory is refused, naming why', async () => {
    const big = join(dir, 'big-secret');
    writeFileSync(big, 'x'.repeat(1024 * 1024 + 1));
    const error = await failure(load(`stateDir: "\${file:${big}}"\nmetadataUrl: "\${file:${dir}}"\n`));
    expect(issueAt(error, 'stateDir')).toBe(`\${file:${big}}: cannot read ${big}: larger than 1 MiB, the most a reference reads; expected a small file holding the value`);
    expect(issueAt(error, 'metadataUrl')).toBe(`\${file:${dir}}: cannot read ${dir}: a directory; expected a regular file holding the value`);
    writeFileSync(big, 'x'.repeat(1024 * 1024));
    expect((await load(`stateDir: "\${file:${big}}"\n`)).stateDir).toHaveLength(1024 * 1024);
  });

  test('an unknown reference form is rejected and $${ stays a literal ${', async () => {
    const error = await failure(load('stateDir: "/data/${HOME}"\n'));
    expect(issueAt(error, 'stateDir')).toBe('got ${HOME}: expected ${env:NAME} or ${file:/path} (write $${ for a literal ${)');
    const config = await load('stateDir: "/data/$${HOME}"\n');
    expect(config.stateDir).toBe('/data/${HOME}');
  });

  test('a resolved secret never appears in messages or log lines', async () => {
    const secret = 'xoxb-very-secret-token-4242';
    const config = await load('steps:\n  - name: a\n    notify: { url: "http://127.0.0.1:9/hook?token=${env:TOKEN}" }\n', { env: { TOKEN: secret } });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createLogger({ destination });
    // Deeper than the `*.url` redact path, and under a field name that redaction does not know.
    log.info({ config, copy: (config.steps[0]?.options as { url: string }).url }, `loaded ${JSON.stringify(config.steps)}`);
    log.flush();
    await new Promise((resolve) => setImmediate(resolve));
    const output = lines.join('');
    expect(output).toContain('[REDACTED]');
    expect(output).toContain('http://127.0.0.1:9/hook?token=');
    expect(output).not.toContain(secret);

    const error = await failure(load('pollInterval: "${env:TOKEN}"\n', { env: { TOKEN: secret } }));
    expect(error.message).not.toContain(secret);
    expect(issueAt(error, 'pollInterval')).toContain('[REDACTED]');
  });
});

describe('docs/config.md', () => {
  test('documents every setting and its environment variable', () => {
    const docs = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
    for (const path of settingPaths()) expect(docs).toContain(`| \`${path.join('.')}\` |`);
    for (const name of ['PREEMPTD_POLL_INTERVAL', 'PREEMPTD_AWS__ALLOW_IMDS_V1']) expect(docs).toContain(name);
    expect(envName(['aws', 'allowImdsV1'])).toBe('PREEMPTD_AWS__ALLOW_IMDS_V1');
  });
});

describe('overrides', () => {
  test('env names are the SCREAMING_SNAKE keys, sections joined by a double underscore', () => {
    expect(overridesFromEnv({ PREEMPTD_POLL_INTERVAL: '2s', PREEMPTD_AWS__ALLOW_IMDS_V1: 'true', PREEMPTD_AWS__TOKEN_TTL: '60', HOME: '/root' })).toEqual([
      { path: ['pollInterval'], value: '2s', origin: 'PREEMPTD_POLL_INTERVAL' },
      { path: ['aws', 'allowImdsV1'], value: true, origin: 'PREEMPTD_AWS__ALLOW_IMDS_V1' },
      { path: ['aws', 'tokenTtl'], value: 60, origin: 'PREEMPTD_AWS__TOKEN_TTL' },
    ]);
  });

  test('precedence is file < env < flags', async () => {
    const env = { PREEMPTD_POLL_INTERVAL: '2s', PREEMPTD_STATE_DIR: '/env/state', PREEMPTD_AWS__ALLOW_IMDS_V1: 'true' };
    const flags = overridesFromFlags(['aws.tokenTtl=120', 'stateDir=/flag/state'], { pollInterval: '3s', logLevel: undefined });
    const config = await load('pollInterval: 1500ms\nstateDir: /file/state\nsafetyMargin: 7s\naws: { tokenTtl: 30 }\n', { env, overrides: flags });
    expect(config.safetyMarginMs).toBe(7000);
    expect(config.aws.allowImdsV1).toBe(true);
    expect(config.pollIntervalMs).toBe(3000);
    expect(config.stateDir).toBe('/flag/state');
    expect(config.aws.tokenTtlSeconds).toBe(120);

    const envOnly = await load('pollInterval: 1500ms\n', { env });
    expect(envOnly.pollIntervalMs).toBe(2000);
  });

  test('a list setting can be overridden with a YAML flow list', async () => {
    const config = await load('provider: aws\n', { env: { PREEMPTD_READINESS__NOT_READY_ON: '[terminate, stop]' } });
    expect(config.readiness.notReadyOn).toEqual(['terminate', 'stop']);
  });

  test('dedicated flags take camelCase or kebab-case names', () => {
    expect(overridesFromFlags([], { 'metadata-url': 'http://127.0.0.1:1', provider: 'aws' })).toEqual([
      { path: ['metadataUrl'], value: 'http://127.0.0.1:1', origin: '--metadata-url' },
      { path: ['provider'], value: 'aws', origin: '--provider' },
    ]);
  });

  test('a bad override value names the variable it came from', async () => {
    const error = await failure(load('provider: aws\n', { env: { PREEMPTD_POLL_INTERVAL: 'often' } }));
    expect(issueAt(error, 'pollInterval')).toBe('got "often": expected a duration such as 500ms, 5s, 2m or 1h (from PREEMPTD_POLL_INTERVAL)');
  });

  test('overriding an unknown key names the flag', async () => {
    expect(() => overridesFromFlags(['aws.allowImdsV2=true'], {})).toThrow(/--set aws\.allowImdsV2: got aws\.allowImdsV2: not a setting/);
    expect(() => overridesFromFlags([], { pollEvery: '2s' })).toThrow(/--poll-every: not a setting flag/);
    expect(() => overridesFromFlags(['pollInterval'], {})).toThrow(/--set pollInterval: expected key=value/);
    expect(() => overridesFromFlags(['aws=1'], {})).toThrow(/aws is a section: set one of aws\.allowImdsV1/);
  });

  test('a PREEMPTD_* variable that is no setting is a warning with a suggestion, never an error', async () => {
    const warnings: Array<{ path: string; message: string }> = [];
    const config = await load('provider: aws\n', {
      env: { PREEMPTD_POLL_INTERVALL: '2s', PREEMPTD_SLACK_URL: 'https://hooks.example/x', PREEMPTD_GCP__HANG: '5' },
      onWarning: (warning: { path: string; message: string }) => warnings.push(warning),
    });
    expect(config.pollIntervalMs).toBe(1000);
    expect(warnings).toEqual([
      { path: 'PREEMPTD_POLL_INTERVALL', message: 'not a setting, ignored; did you mean PREEMPTD_POLL_INTERVAL?' },
      { path: 'PREEMPTD_SLACK_URL', message: expect.stringMatching(/^not a setting, ignored; the settings are PREEMPTD_PROVIDER, .*PREEMPTD_CONFIG$/) },
      { path: 'PREEMPTD_GCP__HANG', message: expect.stringMatching(/^not a setting, ignored; the settings are /) },
    ]);
    expect(overridesFromEnv({ PREEMPTD_POLL_INTERVALL: '2s' })).toEqual([]);
  });

  test('Kubernetes service links of a Service named preemptd (or preemptd-*) are left alone', () => {
    const links = {
      PREEMPTD_SERVICE_HOST: '10.0.0.7',
      PREEMPTD_SERVICE_PORT: '9464',
      PREEMPTD_SERVICE_PORT_METRICS: '9464',
      PREEMPTD_PORT: 'tcp://10.0.0.7:9464',
      PREEMPTD_PORT_9464_TCP: 'tcp://10.0.0.7:9464',
      PREEMPTD_PORT_9464_TCP_PROTO: 'tcp',
      PREEMPTD_PORT_9464_TCP_PORT: '9464',
      PREEMPTD_PORT_9464_TCP_ADDR: '10.0.0.7',
      PREEMPTD_METRICS_SERVICE_HOST: '10.0.0.8',
      PREEMPTD_METRICS_PORT_9464_UDP: 'udp://10.0.0.8:9464',
    };
    expect(envOverrides(links)).toEqual({ overrides: [], issues: [], warnings: [] });
  });

  test('steps cannot be overridden from env or flags, and the message says so', () => {
    expect(() => overridesFromEnv({ PREEMPTD_STEPS: '[]' })).toThrow(/PREEMPTD_STEPS: steps cannot be set from the environment or flags: edit the config file/);
    expect(() => overridesFromFlags(['steps=[]'], {})).toThrow(/steps cannot be set from the environment or flags/);
  });

  test('PREEMPTD_CONFIG is not a setting and is left alone', () => {
    expect(overridesFromEnv({ PREEMPTD_CONFIG: '/etc/preemptd.yaml' })).toEqual([]);
  });
});
