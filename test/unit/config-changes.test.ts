import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { configChanges, keepRestartSettings } from '../../src/config/changes.js';
import { CONFIG_DEFAULTS, compileSettings, isMapping, settingPaths, settingsOf, TAKES_EFFECT, topLevelSchema, type TakesEffect } from '../../src/config/schema.js';
import { compileConfig } from '../helpers/config.js';

const BASE = { stateDir: '/tmp/preemptd-changes', metadataUrl: 'http://127.0.0.1:9', steps: [{ name: 'by-name', signal: { match: 'trainer' } }] };

/** A value other than BASE's (or the default) for every setting, by dotted config-file path. */
const CHANGED: Record<string, unknown> = {
  provider: 'aws',
  metadataUrl: 'http://127.0.0.1:10',
  pollInterval: '3s',
  requestTimeout: '4s',
  stateDir: '/tmp/preemptd-elsewhere',
  safetyMargin: '9s',
  minimumBudget: '20s',
  logLevel: 'debug',
  onShutdownSignal: 'run-plan',
  'aws.allowImdsV1': true,
  'aws.tokenTtl': 60,
  'aws.tokenTimeout': '5s',
  'aws.lifecycleTimeout': '15m',
  'aws.hibernateBudget': '5s',
  'gcp.hangTimeout': 30,
  'gcp.preemptionNoticeDuration': '120s',
  'azure.ackWhenDone': true,
  'azure.firstCallTimeout': '1m',
  'alibaba.hardened': false,
  'alibaba.tokenTtl': 60,
  'kubernetes.node': 'node-b',
  'kubernetes.kubeconfig': '/etc/preemptd/kubeconfig',
  'kubernetes.watchNode': true,
  'kubernetes.signals': [{ name: 'drained', label: 'example.com/drained', kind: 'terminate', deadline: '1m' }],
  'server.enabled': false,
  'server.listen': '127.0.0.1:9999',
  noticeFile: '/run/elsewhere/notice.json',
  'readiness.notReadyOn': ['terminate'],
  steps: [{ name: 'by-name', signal: { match: 'trainer-v2' } }, { name: 'then', after: ['by-name'], signal: { match: 'sidecar' } }],
};

/** Today's settings read only at start (the provider and its watch loop, the journal, the local server). */
const RESTART_ONLY = [
  'provider',
  'metadataUrl',
  'pollInterval',
  'requestTimeout',
  'stateDir',
  'noticeFile',
  'aws.allowImdsV1',
  'aws.tokenTtl',
  'aws.tokenTimeout',
  'aws.lifecycleTimeout',
  'aws.hibernateBudget',
  'gcp.hangTimeout',
  'gcp.preemptionNoticeDuration',
  'azure.firstCallTimeout',
  'alibaba.hardened',
  'alibaba.tokenTtl',
  'kubernetes.node',
  'kubernetes.kubeconfig',
  'kubernetes.watchNode',
  'kubernetes.signals',
  'server.enabled',
  'server.listen',
];

const ALL_PATHS = [...settingPaths(), ['steps']].map((path) => path.join('.'));

function withSetting(raw: Record<string, unknown>, dotted: string, value: unknown): Record<string, unknown> {
  const [key, ...rest] = dotted.split('.');
  if (rest.length === 0) return { ...raw, [key!]: value };
  const section = raw[key!];
  return { ...raw, [key!]: withSetting(isMapping(section) ? section : {}, rest.join('.'), value) };
}

/** BASE with every setting changed. */
function everySettingChanged(): Record<string, unknown> {
  return Object.entries(CHANGED).reduce<Record<string, unknown>>((raw, [path, value]) => withSetting(raw, path, value), BASE);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** Keys of the schema's top level that TAKES_EFFECT leaves unclassified. */
function unclassified(shape: Record<string, unknown>): string[] {
  return Object.keys(shape).filter((key) => !Object.keys(TAKES_EFFECT).includes(key));
}

/** The names docs/operations.md uses: a whole section as `aws.*`, a split one key by key. */
function namesTakingEffect(effect: TakesEffect): string[] {
  const defaults = new Map<string, unknown>(Object.entries(CONFIG_DEFAULTS));
  return Object.entries(TAKES_EFFECT).flatMap(([key, classified]) => {
    if (typeof classified === 'object') return Object.entries(classified).flatMap(([inner, value]) => (value === effect ? [`${key}.${inner}`] : []));
    if (classified !== effect) return [];
    return [isMapping(defaults.get(key)) ? `${key}.*` : key];
  });
}

describe('TAKES_EFFECT', () => {
  test('classifies every key of CONFIG_DEFAULTS and of the schema exactly once, split sections key by key', () => {
    const compiledDefaults = topLevelSchema.parse({});
    expect(Object.keys(TAKES_EFFECT).sort()).toEqual(Object.keys(CONFIG_DEFAULTS).sort());
    expect(Object.keys(TAKES_EFFECT).sort()).toEqual(Object.keys(compiledDefaults).sort());
    const sections = new Map<string, unknown>(Object.entries(compiledDefaults));
    for (const [key, classified] of Object.entries(TAKES_EFFECT)) {
      if (typeof classified === 'string') continue;
      const section = sections.get(key);
      expect(isMapping(section) && Object.keys(section).sort()).toEqual(Object.keys(classified).sort());
    }
    expect(Object.keys(CHANGED).sort()).toEqual([...ALL_PATHS].sort());
  });

  test('a new top-level setting in the schema without a classification is caught', () => {
    expect(unclassified(topLevelSchema.shape)).toEqual([]);
    expect(unclassified(topLevelSchema.extend({ spotPriceLimit: z.number() }).shape)).toEqual(['spotPriceLimit']);
  });

  test('the restart-only settings are the ones read only at start', () => {
    const running = compileConfig(BASE);
    expect(configChanges(running, compileConfig(everySettingChanged())).restartNeeded.sort()).toEqual([...RESTART_ONLY].sort());
  });

  test('docs/operations.md lists what a reload applies and what needs a restart, as derived', () => {
    const docs = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    const bullet = (start: string) => {
      const from = docs.indexOf(`\n- ${start}`);
      expect(from).toBeGreaterThan(-1);
      const text = docs.slice(from + 1, docs.slice(from + 1).search(/\n(- |\n)/) + from + 1);
      return [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1]!).sort();
    };
    expect(bullet('Applied from the next notice on:')).toEqual(namesTakingEffect('reload').sort());
    expect(bullet('Read only at start')).toEqual(namesTakingEffect('restart').sort());
  });
});

describe('settingsOf', () => {
  test('is the inverse of compileSettings: every setting under its config-file name', () => {
    const raw = everySettingChanged();
    const config = compileConfig(raw);
    expect(settingsOf(config)).toEqual({ ...topLevelSchema.parse(raw), steps: config.steps });
    expect({ file: config.file, ...compileSettings(settingsOf(config)) }).toEqual(config);
  });
});

describe('configChanges and keepRestartSettings', () => {
  test.each(Object.entries(CHANGED))('a change to %s is reported by its path and applied or kept as classified', (path, value) => {
    const running = deepFreeze(compileConfig(BASE));
    const next = deepFreeze(compileConfig(withSetting(BASE, path, value)));
    const restart = RESTART_ONLY.includes(path);
    expect(configChanges(running, next)).toEqual(restart ? { applied: [], restartNeeded: [path] } : { applied: [path], restartNeeded: [] });
    expect(keepRestartSettings(running, next)).toEqual(restart ? running : next);
  });

  test('a config with the same settings is no change, regular expressions in step options included', () => {
    expect(configChanges(compileConfig(BASE), compileConfig(BASE))).toEqual({ applied: [], restartNeeded: [] });
  });

  test('a reload takes the new steps and reloadable settings while keeping the running provider, poll and server settings', () => {
    const running = compileConfig({ ...BASE, provider: 'aws', pollInterval: '1s', azure: { firstCallTimeout: '2m' } });
    const next = compileConfig({
      provider: 'gcp',
      pollInterval: '5s',
      safetyMargin: '9s',
      azure: { ackWhenDone: true, firstCallTimeout: '10s' },
      server: { listen: '0.0.0.0:1' },
      steps: [{ name: 'hook', webhook: { url: 'http://127.0.0.1:9/hook' } }],
    });
    const kept = keepRestartSettings(running, next);
    expect(kept).toMatchObject({ provider: 'aws', pollIntervalMs: 1000, safetyMarginMs: 9000, stateDir: running.stateDir, server: running.server });
    expect(kept.steps).toEqual(next.steps);
    expect(kept.azure).toEqual({ ackWhenDone: true, firstCallTimeoutMs: 120_000 });
    expect(next.provider).toBe('gcp');
  });
});
