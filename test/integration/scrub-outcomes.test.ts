import { jest } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { simulateCommand, syntheticNotice } from '../../src/commands/simulate.js';
import { hostFacts } from '../../src/lib/host.js';
import { createLogger } from '../../src/lib/log.js';
import type { StepSummary } from '../../src/notice/event.js';
import { Journal } from '../../src/notice/journal.js';
import { buildPlan, executePlan } from '../../src/plan/executor.js';
import { findStepType } from '../../src/steps/registry.js';
import { loadConfig } from '../helpers/config.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';
import { until } from '../helpers/until.js';

// A token in an http step's URL path, echoed back by the service in its error body, and a
// three-character PIN: neither may reach the journal, the listener (/v1/status), the
// plan.finished webhook, the log or `simulate --dry-run`, raw or URL-encoded.

const TOKEN = 'tok en/42+ü';
const PIN = 'z9q';
const resources = new TestResources('preemptd-scrub-');
const savedEnv = { ...process.env };

afterEach(() => {
  process.env = { ...savedEnv };
});

/** Every form the secrets could take in what leaves the process. */
function leaks(text: string): string[] {
  const forms = [TOKEN, encodeURIComponent(TOKEN), encodeURI(TOKEN), 'tok%20en/42+%C3%BC', JSON.stringify(TOKEN).slice(1, -1)];
  const found = forms.filter((form) => text.includes(form));
  if (/(^|[^A-Za-z0-9])z9q([^A-Za-z0-9]|$)/.test(text)) found.push(PIN);
  return found;
}

async function setup() {
  const dir = resources.tempDir();
  const service = await resources.receiver({ status: 500, body: `{"error":"token ${TOKEN} rejected for pin ${PIN}"}` });
  const hooks = await resources.receiver({ status: 204 });
  process.env.DRAIN_TOKEN = TOKEN;
  process.env.DRAIN_PIN = PIN;
  const file = writeConfigFile(dir, {
    stateDir: `${dir}/state`,
    steps: [
      { name: 'drain', http: { url: `${service.url('/drain/')}\${env:DRAIN_TOKEN}`, headers: { 'x-pin': '${env:DRAIN_PIN}' } } },
      { name: 'summary', webhook: { url: hooks.url('/summary'), send: 'finish' } },
    ],
  });
  return { dir, service, hooks, file, config: await loadConfig({ file }) };
}

test('step outcomes are scrubbed before the journal, the listener, the log and the plan.finished webhook', async () => {
  const { dir, service, hooks, config } = await setup();
  const lines: string[] = [];
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  });
  const journal = await Journal.open(`${dir}/state`, log);
  const now = Date.now();
  const notice = syntheticNotice('terminate', 120_000, now);
  await journal.begin(notice, now);
  const finished: StepSummary[] = [];
  const progress: unknown[] = [];
  const plan = buildPlan(notice, config, now, findStepType);
  const result = await executePlan(plan, {
    log,
    host: hostFacts(),
    lookup: findStepType,
    journal,
    onStepFinished: (summary) => finished.push(summary),
    onStepProgress: (_name, detail) => progress.push(detail),
  });

  // The service did get the real token (the step works); nothing we report carries it.
  expect(decodeURIComponent(service.requests[0]!.path)).toBe(`/drain/${TOKEN}`);
  const drain = result.steps.find((step) => step.name === 'drain')!;
  expect(drain).toMatchObject({ status: 'failed', detail: { request: expect.stringContaining('/drain/[REDACTED]') } });
  expect(drain.detail!.body).toContain('[REDACTED]');
  const journalFile = `${dir}/state/journal.json`;
  await until(() => existsSync(journalFile) && readFileSync(journalFile, 'utf8').includes('"summary"'));
  const [summaryHook] = await hooks.waitFor(1);
  const outputs = {
    journal: readFileSync(journalFile, 'utf8'),
    listener: JSON.stringify([finished, progress]),
    result: JSON.stringify(result),
    webhook: summaryHook!.body,
    log: lines.join(''),
  };
  for (const [where, text] of Object.entries(outputs)) expect({ where, leaks: leaks(text) }).toEqual({ where, leaks: [] });
});

test('simulate --dry-run, text and JSON, shows no secret', async () => {
  const { file } = await setup();
  const written: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  try {
    await simulateCommand({ config: file, kind: 'terminate', deadline: '120s', dryRun: true } as never);
    await simulateCommand({ config: file, kind: 'terminate', deadline: '120s', dryRun: true, json: true } as never);
  } finally {
    write.mockRestore();
  }
  expect(written.join('')).toContain('/drain/[REDACTED]');
  expect(leaks(written.join(''))).toEqual([]);
});
