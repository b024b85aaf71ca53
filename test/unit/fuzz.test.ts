import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { compileConfig } from '../helpers/config.js';
import { parseDuration } from '../../src/lib/duration.js';
import { ConfigError, MetadataError, PreemptdError } from '../../src/lib/errors.js';
import { buildEvent, type PreemptdEvent } from '../../src/notice/event.js';
import { hostFacts } from '../../src/lib/host.js';
import { checkCondition } from '../../src/steps/http/condition.js';
import { Journal } from '../../src/notice/journal.js';
import type { Notice } from '../../src/notice/notice.js';
import { readPidfile } from '../../src/steps/signal/targets.js';
import { ALIBABA_TERMINATION_TIME } from '../../src/providers/alibaba/provider.js';
import { parseTerminationTime } from '../../src/providers/metadata/termination-time.js';
import { parseTencentTime, TENCENT_TERMINATION_TIME } from '../../src/providers/tencent/provider.js';
import { LifecycleTracker, parseLifecycleState } from '../../src/providers/aws/lifecycle.js';
import { tencentTime } from '../../src/simulator/tencent.js';
import { parseAwsEventDate, parseInstanceAction, parseIsoTime, parseMaintenance, parseRebalance } from '../../src/providers/aws/payloads.js';
import { parseAzureInstance, parseScheduledEvents, ScheduledEventsTracker } from '../../src/providers/azure/scheduled-events.js';
import { parseMaintenanceEvent, parsePreempted } from '../../src/providers/gcp/keys.js';
import { parseUpcomingMaintenance, UPCOMING_STATUSES } from '../../src/providers/gcp/upcoming-maintenance.js';
import { parseFaultSpec } from '../../src/simulator/fault-spec.js';
import { awsEventDate } from '../../src/simulator/aws.js';
import { parseLocation } from '../../src/stores/location.js';
import { renderTemplate, renderWebhook, validateTemplate, WEBHOOK_FORMATS } from '../../src/steps/webhook/render.js';
import { parseRetryAfter } from '../../src/steps/webhook/retry.js';
import { Pattern } from '../../src/lib/pattern.js';

/**
 * Property tests for every parser of outside input: metadata bodies, config files,
 * durations, templates, step-side answers. None may throw anything but its documented
 * error, or hang (a hang fails the test by its timeout). FUZZ_RUNS=<n> runs each property
 * n times instead of the default (docs/robustness.md has the figures of a long run).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
const options = { numRuns: RUNS };
const silent = pino({ level: 'silent' });

/** Returns normally, or throws a MetadataError for a bad body: nothing else. */
function metadataParser<T>(parse: (body: string) => T): (body: string) => T | undefined {
  return (body) => {
    try {
      return parse(body);
    } catch (error) {
      if (error instanceof MetadataError && error.code === 'ERR_METADATA_BODY') return undefined;
      throw error;
    }
  };
}

const validDate = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true });
const isoTime = validDate.map((date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z'));
/** Strings with the characters that matter to these formats, plus anything at all. */
const nearText = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom(...'0123456789-:TZ .,+GMTJanFebDec{}[]"\\TRUEFALSENOE_'.split('')) }),
  fc.string({ unit: 'binary', maxLength: 200 }),
);
/** A JSON value with wrong types, right types, and cut-short text mixed in. */
function jsonBodies<T>(shape: fc.Arbitrary<T>): fc.Arbitrary<string> {
  return fc.oneof(
    shape.map((value) => JSON.stringify(value)),
    shape.chain((value) => {
      const text = JSON.stringify(value) ?? '';
      return fc.nat({ max: Math.max(text.length, 1) }).map((cut) => text.slice(0, cut));
    }),
    fc.json(),
    nearText,
  );
}

const anyValue = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.json().map((text) => JSON.parse(text) as unknown));

describe('AWS metadata parsers', () => {
  test('instance-action: any body gives a terminate/stop/hibernate notice with a real time, or a bad-body error', () => {
    const shape = fc.record({ action: fc.oneof(fc.constantFrom('terminate', 'stop', 'hibernate'), anyValue), time: fc.oneof(isoTime, nearText, anyValue) }, { requiredKeys: [] });
    fc.assert(
      fc.property(jsonBodies(shape), (body) => {
        const action = metadataParser(parseInstanceAction)(body);
        if (action) expect(['terminate', 'stop', 'hibernate']).toContain(action.action);
        if (action) expect(Number.isNaN(action.time.getTime())).toBe(false);
      }),
      options,
    );
  });

  test('rebalance: any body gives a recommendation with a real time, or a bad-body error', () => {
    const shape = fc.record({ noticeTime: fc.oneof(isoTime, nearText, anyValue) }, { requiredKeys: [] });
    fc.assert(
      fc.property(jsonBodies(shape), (body) => {
        const recommendation = metadataParser(parseRebalance)(body);
        if (recommendation) expect(Number.isNaN(recommendation.noticeTime.getTime())).toBe(false);
      }),
      options,
    );
  });

  test('scheduled maintenance: any body gives events with real dates, or a bad-body error', () => {
    const event = fc.record(
      {
        EventId: fc.oneof(fc.string(), anyValue),
        NotBefore: fc.oneof(validDate.map(awsEventDate), nearText, anyValue),
        Code: fc.oneof(fc.constantFrom('system-reboot', 'instance-stop'), anyValue),
        State: fc.oneof(fc.constantFrom('active', 'canceled', 'completed', 'Completed'), anyValue),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(jsonBodies(fc.array(event, { maxLength: 4 })), (body) => {
        const events = metadataParser(parseMaintenance)(body);
        for (const parsed of events ?? []) expect(Number.isNaN(parsed.notBefore.getTime())).toBe(false);
      }),
      options,
    );
  });

  test('event dates: every date written the IMDS way reads back to the same second; other text is undefined', () => {
    fc.assert(
      fc.property(validDate, (date) => {
        expect(parseAwsEventDate(awsEventDate(date))?.getTime()).toBe(Math.floor(date.getTime() / 1000) * 1000);
      }),
      options,
    );
    fc.assert(
      fc.property(nearText, (text) => {
        const date = parseAwsEventDate(text);
        if (date) expect(Number.isNaN(date.getTime())).toBe(false);
        const iso = parseIsoTime(text);
        if (iso) expect(Number.isNaN(iso.getTime())).toBe(false);
      }),
      options,
    );
  });
});

describe('GCP metadata values', () => {
  test('preempted and maintenance-event: any value is understood or a bad-body error; a cut-short value is never a notice', () => {
    const values = fc.oneof(nearText, fc.constantFrom('TRUE', 'FALSE', 'NONE', 'MIGRATE_ON_HOST_MAINTENANCE', 'TERMINATE_ON_HOST_MAINTENANCE'));
    fc.assert(
      fc.property(values, (value) => {
        metadataParser(parsePreempted)(value);
        const maintenance = metadataParser(parseMaintenanceEvent)(value);
        if (maintenance !== undefined) expect(maintenance === 'NONE' || maintenance.endsWith('_ON_HOST_MAINTENANCE')).toBe(true);
      }),
      options,
    );
    fc.assert(
      fc.property(fc.constantFrom('NONE', 'MIGRATE_ON_HOST_MAINTENANCE', 'TERMINATE_ON_HOST_MAINTENANCE'), fc.nat(), (value, cut) => {
        const short = value.slice(0, cut % value.length);
        expect(metadataParser(parseMaintenanceEvent)(short)).toBeUndefined();
      }),
      options,
    );
  });

  test('upcoming-maintenance: any body is nothing pending, a complete one, or one due at a real window start; else a bad-body error', () => {
    const reason = fc.constantFrom('PLANNED_UPDATE', 'FAILURE_GPU_XID', 'FAILURE_NVLINK', 'failure gpu', '');
    const shape = fc.record(
      {
        maintenance_status: fc.oneof(fc.constantFrom(...UPCOMING_STATUSES, 'NONE', 'pending'), anyValue),
        type: fc.oneof(fc.constantFrom('SCHEDULED', 'UNSCHEDULED'), anyValue),
        window_start_time: fc.oneof(isoTime, nearText, anyValue),
        window_end_time: fc.oneof(isoTime, nearText, anyValue),
        latest_window_start_time: fc.oneof(isoTime, nearText, anyValue),
        can_reschedule: fc.oneof(fc.boolean(), fc.constantFrom('true', 'false'), anyValue),
        maintenance_reasons: fc.oneof(fc.array(reason, { maxLength: 3 }), reason, anyValue),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(jsonBodies(shape), fc.constantFrom('{ }', 'NONE', 'NON', '{')), (body) => {
        const upcoming = metadataParser(parseUpcomingMaintenance)(body);
        if (upcoming === undefined || upcoming.status === 'none' || upcoming.status === 'COMPLETE') return;
        expect(Number.isNaN(upcoming.windowStart.getTime())).toBe(false);
        for (const reason of upcoming.reasons) expect(reason).toMatch(/^[A-Z][A-Z0-9_]*$/);
      }),
      options,
    );
  });
});

describe('Azure documents', () => {
  const azureEvent = fc.record(
    {
      EventId: fc.oneof(fc.constantFrom('E1', 'E2', 'E3'), anyValue),
      EventType: fc.oneof(fc.constantFrom('Preempt', 'Terminate', 'Reboot', 'Redeploy', 'Freeze', 'Bogus'), anyValue),
      EventStatus: fc.oneof(fc.constantFrom('Scheduled', 'Started'), anyValue),
      Resources: fc.oneof(fc.constant(['vm-1']), fc.array(fc.string(), { maxLength: 3 }), anyValue),
      NotBefore: fc.oneof(validDate.map((date) => date.toUTCString()), fc.constant(''), nearText, anyValue),
    },
    { requiredKeys: [] },
  );
  const documentShape = fc.record({ DocumentIncarnation: fc.oneof(fc.integer({ min: 0, max: 20 }), anyValue), Events: fc.oneof(fc.array(azureEvent, { maxLength: 4 }), anyValue) }, { requiredKeys: [] });

  test('scheduled events and the instance document: any body parses or is a bad-body error', () => {
    fc.assert(
      fc.property(jsonBodies(documentShape), (body) => {
        metadataParser(parseScheduledEvents)(body);
      }),
      options,
    );
    const instance = fc.record({ compute: fc.oneof(fc.record({ name: fc.oneof(fc.string(), anyValue), vmId: anyValue, zone: anyValue }, { requiredKeys: [] }), anyValue) }, { requiredKeys: [] });
    fc.assert(
      fc.property(jsonBodies(instance), (body) => {
        const facts = metadataParser(parseAzureInstance)(body);
        if (facts) expect(typeof facts.name).toBe('string');
      }),
      options,
    );
  });

  test('a stream of documents yields each event of this VM at most once, always with a real deadline', () => {
    fc.assert(
      fc.property(fc.array(jsonBodies(documentShape), { maxLength: 12 }), (bodies) => {
        const tracker = new ScheduledEventsTracker('vm-1', { name: 'vm-1' }, silent);
        const yielded = new Set<string>();
        for (const body of bodies) {
          const events = metadataParser((text) => tracker.update(text, new Date()))(body) ?? [];
          for (const event of events) {
            if (event.type !== 'notice') continue;
            expect(yielded.has(event.notice.id)).toBe(false);
            yielded.add(event.notice.id);
            expect(Number.isNaN(event.notice.deadline!.getTime())).toBe(false);
          }
        }
      }),
      options,
    );
  });
});

describe('Alibaba termination time', () => {
  test('any body is no notice, or a notice with a real time', () => {
    fc.assert(
      fc.property(fc.oneof(isoTime, nearText, fc.constant(null)), (body) => {
        const termination = parseTerminationTime(ALIBABA_TERMINATION_TIME, body);
        if (termination?.time) expect(Number.isNaN(termination.time.getTime())).toBe(false);
      }),
      options,
    );
  });
});

describe('Tencent termination time', () => {
  test('any body is no notice, or a notice with a real time; every time Tencent can write reads back exactly', () => {
    const tencentText = validDate.filter((date) => date.getUTCFullYear() < 9999).map(tencentTime);
    fc.assert(
      fc.property(fc.oneof(tencentText, isoTime, nearText, fc.constant(null)), (body) => {
        const termination = parseTerminationTime(TENCENT_TERMINATION_TIME, body);
        if (termination?.time) expect(Number.isNaN(termination.time.getTime())).toBe(false);
      }),
      options,
    );
    fc.assert(
      fc.property(validDate.filter((date) => date.getUTCFullYear() < 9999), (date) => {
        const whole = new Date(Math.floor(date.getTime() / 1000) * 1000);
        expect(parseTencentTime(tencentTime(date))?.getTime()).toBe(whole.getTime());
      }),
      options,
    );
  });
});

describe('AWS Auto Scaling target lifecycle state', () => {
  const states = fc.constantFrom('InService', 'Terminated', 'Standby', 'Detached', 'Warmed:Terminated', 'Warmed:Running');
  test('any body is a state name or ERR_METADATA_BODY; any run of states alternates termination and withdrawal', () => {
    fc.assert(
      fc.property(fc.oneof(states, nearText), (body) => {
        const state = metadataParser(parseLifecycleState)(body);
        if (state !== undefined) expect(state).toMatch(/^[A-Za-z]+(:[A-Za-z]+)*$/);
      }),
      options,
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(states, fc.constant(null))), (bodies) => {
        const tracker = new LifecycleTracker('boot');
        const changes = bodies.map((body) => tracker.read(body)).filter((change) => change !== undefined);
        changes.forEach((change, index) => expect(change.type).toBe(index % 2 === 0 ? 'terminating' : 'withdrawn'));
        const ids = changes.filter((change) => change.type === 'terminating').map((change) => change.identity);
        expect(new Set(ids).size).toBe(ids.length);
      }),
      options,
    );
  });
});

/** A valid config using every step type; mutations start from it so they get past the first checks. */
function baseConfig(): Record<string, unknown> {
  return {
    provider: 'aws',
    metadataUrl: 'http://127.0.0.1:1',
    pollInterval: '1s',
    requestTimeout: '2s',
    stateDir: '/tmp/preemptd-fuzz',
    safetyMargin: '5s',
    minimumBudget: '10s',
    logLevel: 'info',
    aws: { allowImdsV1: false, tokenTtl: 60, tokenTimeout: '2s' },
    gcp: { hangTimeout: 60 },
    server: { enabled: false, listen: '127.0.0.1:9464' },
    readiness: { notReadyOn: ['terminate'] },
    steps: [
      { name: 'tell', webhook: { url: 'http://127.0.0.1:9/hook', format: 'slack', retries: 2 } },
      { name: 'tmpl', webhook: { url: 'http://127.0.0.1:9/t', format: 'template', template: '{{notice.kind}} {{json host}}' } },
      { name: 'drain', timeout: '10s', http: { url: 'http://127.0.0.1:9/drain', method: 'POST', timeout: '3s', until: { status: [200], interval: '1s' } } },
      { name: 'sig', after: ['drain'], signal: { pidfile: '/run/x.pid', signal: 'SIGTERM', killAfter: '5s' } },
      { name: 'run', exec: { command: ['true'], env: { A: 1 } } },
      { name: 'snap', after: ['sig'], on: ['terminate'], snapshot: { paths: ['/tmp'], to: 'file:///tmp/snap/{instanceId}/' } },
    ],
  };
}

type Path = Array<string | number>;

function paths(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [prefix];
  const entries = Array.isArray(value) ? value.map((item, index) => [index, item] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([key, item]) => paths(item, [...prefix, key]))];
}

function mutate(config: Record<string, unknown>, pick: number, action: 'replace' | 'delete' | 'add', value: unknown): void {
  const all = paths(config).filter((path) => path.length > 0);
  const path = all[pick % all.length]!;
  let parent = config as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (action === 'replace') parent[last] = value;
  else if (action === 'delete') delete parent[last];
  else if (parent[last] !== null && typeof parent[last] === 'object' && !Array.isArray(parent[last])) (parent[last] as Record<string, unknown>).extra = value;
}

/** Values that push at limits: huge and odd durations, bad URLs, templates, signals. */
const edgyValue = fc.oneof(
  anyValue,
  fc.constantFrom('1000h', '99999999999s', `${'9'.repeat(400)}ms`, '-5s', '0s', '1.5m', '', ' ', 'http://', 'file:///%zz/', 's3://b', '{{#each}}{{/each}}', '{{> partial}}', 'SIGFOO', 'SIGKILL', '__proto__'),
);
const mutation = fc.tuple(fc.nat(), fc.constantFrom('replace', 'delete', 'add') as fc.Arbitrary<'replace' | 'delete' | 'add'>, edgyValue);

const MAX_TIMER_MS = 2 ** 31 - 1;

describe('config', () => {
  test('compileConfig: any mutation of a valid config compiles, with durations a timer can hold, or is a ConfigError', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const config = baseConfig();
        for (const [pick, action, value] of mutations) mutate(config, pick, action, value);
        let compiled;
        try {
          compiled = compileConfig(config);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          return;
        }
        for (const ms of [compiled.pollIntervalMs, compiled.requestTimeoutMs, compiled.safetyMarginMs, compiled.minimumBudgetMs, ...compiled.steps.map((step) => step.timeoutMs)]) {
          expect(Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIMER_MS).toBe(true);
        }
      }),
      options,
    );
  });

  test('compileConfig: any value at all is a Config or a ConfigError', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), (value) => {
        try {
          compileConfig(value);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
        }
      }),
      options,
    );
  });

  test('parseConfigText: any text is a mapping or a ConfigError', () => {
    const yamlish = fc.string({ unit: fc.constantFrom(...'ab: -{}[]&*!|>\'"#%@`\n\t0123456789.,?'.split('')), maxLength: 120 });
    const aliasBomb = fc.integer({ min: 1, max: 12 }).map((depth) => {
      const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
      for (let i = 1; i <= depth; i += 1) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
      return lines.join('\n');
    });
    fc.assert(
      fc.property(fc.oneof(fc.string(), yamlish, fc.json(), aliasBomb), (text) => {
        try {
          const value = parseConfigText(text);
          expect(value !== null && typeof value === 'object' && !Array.isArray(value)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
        }
      }),
      options,
    );
  });
});

describe('durations', () => {
  test('parseDuration: any input is undefined or a finite number of milliseconds', () => {
    const durationLike = fc
      .tuple(fc.string({ unit: fc.constantFrom(...'0123456789.'.split('')), minLength: 1, maxLength: 420 }), fc.constantFrom('ms', 's', 'm', 'h', 'd', ''))
      .map(([amount, unit]) => `${amount}${unit}`);
    fc.assert(
      fc.property(fc.oneof(durationLike, fc.constant(`${'9'.repeat(400)}ms`), fc.string(), fc.double(), fc.integer(), anyValue), (input) => {
        const ms = parseDuration(input);
        if (ms !== undefined) expect(Number.isFinite(ms) && ms >= 0).toBe(true);
      }),
      options,
    );
  });
});

function fuzzedEvent(): fc.Arbitrary<PreemptdEvent> {
  return fc
    .record({
      raw: fc.anything({ maxDepth: 3 }),
      instance: fc.dictionary(fc.constantFrom('id', 'name', 'type', 'zone', 'region', 'hostname', 'lifecycle'), fc.string(), { noNullPrototype: true }),
      deadline: fc.option(validDate),
      steps: fc.array(
        // Events are built by code and JSON.parse: their objects always have a prototype.
        fc.record(
          { name: fc.string(), type: fc.string(), status: fc.constantFrom('ok', 'failed', 'timed_out', 'skipped') as fc.Arbitrary<'ok'>, ms: fc.nat(), error: fc.option(fc.string(), { nil: undefined }) },
          { noNullPrototype: true },
        ),
        { maxLength: 4 },
      ),
    })
    .map(({ raw, instance, deadline, steps }) => {
      const notice: Notice = { id: 'aws-terminate-0000000000000000', provider: 'aws', kind: 'terminate', deadline, detectedAt: new Date(), instance, raw };
      return buildEvent('plan.finished', notice, hostFacts(), deadline?.getTime() ?? null, steps);
    });
}

describe('templates and renderings', () => {
  const templateText = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          '{{',
          '}}',
          '{{{',
          '}}}',
          '{{notice.kind}}',
          '{{json notice}}',
          '{{json}}',
          '{{#if notice.deadline}}',
          '{{#if}}',
          '{{else}}',
          '{{/if}}',
          '{{#each steps}}',
          '{{#each}}',
          '{{/each}}',
          '{{#with host}}',
          '{{/with}}',
          '{{> partial}}',
          '{{lookup notice "id"}}',
          '{{log "x"}}',
          '{{!comment}}',
          '{{@root.notice.id}}',
          '{{this}}',
          '{{notice.__proto__}}',
          '{{constructor.constructor}}',
          '\\{{',
          '{{#unless}}',
          '{{/unless}}',
          '{{undefinedHelper 1 2}}',
        ),
        fc.string({ maxLength: 8 }),
      ),
      { maxLength: 10 },
    )
    .map((parts) => parts.join(''));

  test('a template that passes validation renders for any event without throwing', () => {
    fc.assert(
      fc.property(templateText, fuzzedEvent(), (template, event) => {
        const problem = validateTemplate(template);
        if (problem === undefined) expect(typeof renderTemplate(template, event)).toBe('string');
        else expect(typeof problem).toBe('string');
      }),
      options,
    );
  });

  test('every webhook format renders any event', () => {
    fc.assert(
      fc.property(fc.constantFrom(...WEBHOOK_FORMATS.filter((format) => format !== 'template')), fuzzedEvent(), (format, event) => {
        const rendered = renderWebhook(format, event, { contentType: 'application/json', chatId: 42 });
        expect(() => JSON.parse(rendered.body) as unknown).not.toThrow();
      }),
      options,
    );
  });
});

describe('answers of the things steps talk to', () => {
  test('Retry-After: any header is undefined or a delay of at least 0', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), nearText, validDate.map((date) => date.toUTCString()), fc.nat().map(String)), (value) => {
        const delay = parseRetryAfter(value, Date.now());
        if (delay !== undefined) expect(delay >= 0).toBe(true);
      }),
      options,
    );
  });

  test('drain conditions: any status and body is a verdict, never an exception', () => {
    const conditions = [
      { kind: 'status', statuses: [{ min: 200, max: 299 }] },
      { kind: 'bodyContains', text: 'drained' },
      { kind: 'bodyMatches', pattern: new Pattern('^ok$') },
      { kind: 'json', path: 'state.0.__proto__', compare: { op: 'equals', value: 'drained' } },
      { kind: 'json', path: 'inflight', compare: { op: 'lessThan', value: 1 } },
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...conditions), fc.integer({ min: 100, max: 599 }), jsonBodies(fc.anything({ maxDepth: 3 })).map((body) => body ?? ''), (condition, status, body) => {
        const check = checkCondition(condition as never, { status, body });
        expect(typeof check.holds).toBe('boolean');
      }),
      options,
    );
  });

  test('snapshot locations: any text is a location or an ERR_LOCATION that says what was expected', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.constantFrom('file:///%', 'file:///a%zz/', 's3://', 'az://acct/'), fc.webUrl()), (text) => {
        try {
          parseLocation(text);
        } catch (error) {
          expect(error).toBeInstanceOf(PreemptdError);
          expect((error as PreemptdError).code).toBe('ERR_LOCATION');
          expect((error as Error).message).toMatch(/expected|valid|needs|supported/);
        }
      }),
      options,
    );
  });

  test('pidfiles: any content is one pid above 1 or a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'preemptd-fuzz-pid-'));
    try {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.string(), fc.nat().map(String), fc.constantFrom('0', '1', '-5', '1e3', ' 42\n', '9'.repeat(30))), async (content) => {
          const file = join(dir, 'pid');
          writeFileSync(file, content);
          try {
            const pid = await readPidfile(file);
            expect(Number.isSafeInteger(pid) && pid! > 1).toBe(true);
          } catch (error) {
            expect(error).toMatchObject({ code: 'ERR_SIGNAL_TARGET' });
            expect((error as Error).message).toContain('expected one process id greater than 1');
          }
        }),
        { numRuns: Math.min(RUNS, 200) },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the journal: any file content opens (a bad file is moved aside), never throws', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'preemptd-fuzz-journal-'));
    const valid = JSON.stringify({
      version: 1,
      notices: [{ notice: { id: 'n', provider: 'aws', kind: 'terminate', deadline: null, detectedAt: '2030-01-01T00:00:00.000Z', instance: {}, raw: null }, status: 'done', begunAt: 1, steps: {} }],
    });
    try {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.nat({ max: valid.length }).map((cut) => valid.slice(0, cut)), fc.json(), fc.string()), async (content) => {
          const stateDir = mkdtempSync(join(dir, 's-'));
          writeFileSync(join(stateDir, 'journal.json'), content);
          const journal = await Journal.open(stateDir, silent);
          expect(['new', 'done']).toContain(journal.status('n'));
        }),
        { numRuns: Math.min(RUNS, 200) },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('fault specs: any text is a spec or a usage error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'0123456789.:=,%#\nabcdefghijklmnoprstuwy-'.split('')) })), (text) => {
        try {
          parseFaultSpec(text);
        } catch (error) {
          expect(error).toBeInstanceOf(PreemptdError);
          expect((error as PreemptdError).code).toBe('ERR_USAGE');
        }
      }),
      options,
    );
  });
});

describe('bugs the fuzzing found', () => {
  test('a duration longer than a timer can hold (1000h) is refused, not turned into a 1 ms timer', () => {
    expect(() => compileConfig({ pollInterval: '1000h' })).toThrow(/pollInterval: got "1000h": longer than 596h \(about 24.8 days\), the longest wait preemptd can time/);
    expect(() => compileConfig({ steps: [{ name: 'x', timeout: '99999999999s', exec: { command: ['true'] } }] })).toThrow(/longer than 596h/);
    expect(compileConfig({ pollInterval: '596h' }).pollIntervalMs).toBe(596 * 3_600_000);
  });

  test('a duration of hundreds of digits is not a duration (it was Infinity)', () => {
    expect(parseDuration(`${'9'.repeat(400)}ms`)).toBeUndefined();
  });

  test('a template calling an unknown helper or partial is refused when the config loads, not at the notice', () => {
    expect(validateTemplate('{{undefinedHelper 1 2}}')).toMatch(/unknown helper "undefinedHelper" \(expected one of if, unless, each, with, lookup, json\)/);
    expect(validateTemplate('{{> partial}}')).toBe('partials ({{> name}}) are not supported');
    expect(validateTemplate('{{#each}}{{/each}}')).toBe('{{#each}} needs exactly one argument, got 0');
    // Found by a long run: a trial render over an event without steps never entered the loop.
    expect(validateTemplate('{{#each steps}}{{undefinedHelper 1 2}}{{/each}}')).toMatch(/unknown helper "undefinedHelper"/);
    expect(validateTemplate('{{#if notice.deadline}}ok{{else}}{{#with}}{{/with}}{{/if}}')).toMatch(/{{#with}} needs exactly one argument/);
    expect(validateTemplate('{{notice.kind}} {{json steps}} {{#each steps}}{{name}}={{status}}{{/each}} {{lookup notice "id"}}')).toBeUndefined();
    expect(() =>
      compileConfig({ steps: [{ name: 'x', webhook: { url: 'http://127.0.0.1:9/', format: 'template', template: '{{tell notice}}' } }] }),
    ).toThrow(/steps\[0\]\.webhook\.template: not a valid handlebars template: unknown helper "tell"/);
  });

  test('a file:// location with a stray % says what is wrong instead of "URI malformed"', () => {
    expect(() => parseLocation('file:///%')).toThrow('path "/%" has a % not followed by two hex digits (write %25 for a %)');
    expect(parseLocation('file:///snap/100%25/')).toMatchObject({ scheme: 'file', directory: '/snap/100%' });
  });
});
