import { Ajv } from 'ajv';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { STEP_TYPES } from '../../src/steps/registry.js';
import { loadConfig } from '../helpers/config.js';
import { EXAMPLES, SCHEMA_MODELINE } from '../helpers/examples.js';
import { TestResources } from '../helpers/resources.js';

const resources = new TestResources('preemptd-json-schema-');
const ENV = { SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/hooks/slack', POLL: '2s', PROVIDER: 'aws', TTL: '3600', NAME: 'from-env' };
const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(configJsonSchema(STEP_TYPES));

function schemaErrors(text: string): string[] {
  return validate(parse(text) ?? {}) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}`);
}

async function loaderErrors(text: string): Promise<string[]> {
  const file = join(resources.tempDir(), 'config.yaml');
  writeFileSync(file, text);
  try {
    await loadConfig({ file, env: ENV });
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

const webhook = 'steps:\n  - name: tell\n    webhook: { url: "http://127.0.0.1:9/hook"';

/** Crafted configs on which the JSON Schema and the loader must give the same verdict. */
const AGREE: { config: string; valid: boolean }[] = [
  { config: '{}', valid: true },
  { config: 'pollInterval: 500ms', valid: true },
  { config: 'pollInterval: " 1.5m "', valid: true },
  { config: 'pollInterval: 0s', valid: false },
  { config: 'pollInterval: 0', valid: false },
  { config: 'pollInterval: 5', valid: false },
  { config: 'pollInterval: "5"', valid: false },
  { config: 'pollInterval: -1s', valid: false },
  { config: 'pollInterval: "${env:POLL}"', valid: true },
  { config: 'safetyMargin: 0', valid: true },
  { config: 'safetyMargin: "0"', valid: true },
  { config: 'safetyMargin: 0ms', valid: true },
  { config: 'safetyMargin: 1d', valid: false },
  { config: 'provider: gcp', valid: true },
  { config: 'provider: ec2', valid: false },
  { config: 'provider: "${env:PROVIDER}"', valid: true },
  { config: 'metadataUrl: null', valid: true },
  { config: 'metadataUrl: 8080', valid: false },
  { config: 'stateDir: ""', valid: false },
  { config: 'logLevel: verbose', valid: false },
  { config: 'bogus: 1', valid: false },
  { config: 'aws: { tokenTtl: 3600 }', valid: true },
  { config: 'aws: { tokenTtl: 0 }', valid: false },
  { config: 'aws: { tokenTtl: 1.5 }', valid: false },
  { config: 'aws: { tokenTtl: 21601 }', valid: false },
  { config: 'aws: { tokenTtl: "3600" }', valid: false },
  // A reference is text after resolving; a number field refuses it.
  { config: 'aws: { tokenTtl: "${env:TTL}" }', valid: false },
  { config: 'aws: { allowImdsV1: "yes" }', valid: false },
  { config: 'aws: { bogus: true }', valid: false },
  { config: 'gcp: { hangTimeout: 3600 }', valid: true },
  { config: 'azure: { firstCallTimeout: 2m }', valid: true },
  { config: 'server: { listen: "[::1]:9464" }', valid: true },
  { config: 'server: { listen: "0.0.0.0:9464" }', valid: true },
  { config: 'server: { listen: "9464" }', valid: false },
  { config: 'readiness: { notReadyOn: [terminate, preempt] }', valid: true },
  { config: 'readiness: { notReadyOn: [explode] }', valid: false },
  { config: 'steps: {}', valid: false },
  { config: 'steps: [tell]', valid: false },
  { config: `${webhook} }`, valid: true },
  { config: `${webhook}, format: slack, send: both, retries: 20 }`, valid: true },
  { config: `${webhook}, retries: 21 }`, valid: false },
  { config: `${webhook}, format: carrier-pigeon }`, valid: false },
  { config: `${webhook} }\n    timeout: 10s\n    on: [terminate]`, valid: true },
  { config: `${webhook} }\n    timeout: 0s`, valid: false },
  { config: `${webhook} }\n    on: []`, valid: false },
  { config: `${webhook} }\n    bogus: 1`, valid: false },
  { config: `${webhook} }\n    exec: { command: [/bin/true] }`, valid: false },
  { config: 'steps:\n  - name: nothing', valid: false },
  { config: 'steps:\n  - exec: { command: [/bin/true] }', valid: false },
  { config: 'steps:\n  - name: has space\n    exec: { command: [/bin/true] }', valid: false },
  { config: 'steps:\n  - name: "${env:NAME}"\n    exec: { command: [/bin/true] }', valid: true },
  { config: 'steps:\n  - name: run\n    exec: { command: [/bin/true], env: { A: 1, B: true, C: x } }', valid: true },
  { config: 'steps:\n  - name: run\n    exec: { command: /bin/true }', valid: false },
  { config: 'steps:\n  - name: stop\n    signal: { pidfile: /run/x.pid, signal: SIGUSR1, killAfter: 20s }', valid: true },
  { config: 'steps:\n  - name: stop\n    signal: { pid: 1234, gpu: false }', valid: false },
  { config: 'steps:\n  - name: stop\n    signal: { pidfile: /run/x.pid, missingOk: "no" }', valid: false },
  { config: 'steps:\n  - name: drain\n    http: { url: "http://127.0.0.1:9/drain", onRefused: fail }', valid: true },
  { config: 'steps:\n  - name: drain\n    http: { url: "http://127.0.0.1:9/drain", onRefused: maybe }', valid: false },
  { config: 'steps:\n  - name: save\n    snapshot: { paths: [/data], to: "file:///tmp/preemptd-snapshots/" }', valid: true },
  { config: 'steps:\n  - name: save\n    snapshot: { paths: [/data], to: "file:///tmp/x/", bogus: 1 }', valid: false },
];

/**
 * What only the loader checks (docs/config.md, "JSON Schema"): the schema accepts these and
 * the loader refuses them. A row that starts to agree belongs in AGREE.
 */
const LOADER_ONLY: { config: string; why: string }[] = [
  { config: 'steps:\n  - { name: a, exec: { command: [/bin/true] } }\n  - { name: a, exec: { command: [/bin/true] } }', why: 'unique step names' },
  { config: 'steps:\n  - { name: a, after: [b], exec: { command: [/bin/true] } }', why: 'after: names a step' },
  { config: 'steps:\n  - name: stop\n    signal: { signal: SIGTERM }', why: 'exactly one signal target' },
  { config: 'metadataUrl: "ftp://127.0.0.1/"', why: 'URL scheme' },
  { config: 'steps:\n  - name: stop\n    signal: { pidfile: /run/x.pid, signal: SIGNOPE }', why: 'signal names' },
  { config: 'pollInterval: 600h', why: 'the longest timer' },
  { config: 'server: { listen: "127.0.0.1:99999" }', why: 'ports up to 65535' },
];

test('the schema has one alternative per registered step type', () => {
  const schema = configJsonSchema(STEP_TYPES) as { properties: { steps: { items: { oneOf: { required: string[] }[] } } } };
  expect(schema.properties.steps.items.oneOf.map((alternative) => alternative.required[1])).toEqual(STEP_TYPES.map((stepType) => stepType.type));
});

describe.each(EXAMPLES)('$name', ({ text, edited }) => {
  test('passes the JSON Schema and the loader', async () => {
    expect({ schema: schemaErrors(text()), loader: await loaderErrors(text()) }).toEqual({ schema: [], loader: [] });
  });
  if (edited) test('names the installed schema on its first line', () => expect(text().split('\n')[0]).toBe(SCHEMA_MODELINE));
});

test('the schema and the loader agree on every crafted config', async () => {
  const table = [];
  for (const { config, valid } of AGREE) table.push({ config, valid, schema: schemaErrors(config).length === 0, loader: (await loaderErrors(config)).length === 0 });
  const disagreements = table.filter((row) => row.schema !== row.valid || row.loader !== row.valid);
  expect(disagreements).toEqual([]);
});

test('what only the loader checks: the schema accepts, the loader refuses', async () => {
  const table = [];
  for (const { config, why } of LOADER_ONLY) table.push({ why, schema: schemaErrors(config).length === 0, loader: (await loaderErrors(config)).length === 0 });
  expect(table).toEqual(LOADER_ONLY.map(({ why }) => ({ why, schema: true, loader: false })));
});
