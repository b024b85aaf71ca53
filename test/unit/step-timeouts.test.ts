import { compileConfig } from '../helpers/config.js';

const timeouts = (steps: Record<string, unknown>[]) =>
  Object.fromEntries(compileConfig({ metadataUrl: 'http://127.0.0.1:9', steps }).steps.map((step) => [step.name, step.timeoutMs]));

test('a step without timeout: gets what its type needs, not a flat 60 s that would eat a 30 s window', () => {
  expect(
    timeouts([
      { name: 'checkpoint', signal: { pidfile: '/run/t.pid', signal: 'SIGUSR1' } },
      { name: 'stop', signal: { pidfile: '/run/t.pid', signal: 'SIGTERM', waitExit: '2s', killAfter: '10s' } },
      { name: 'tell', webhook: { url: 'http://127.0.0.1:9/hook' } },
      { name: 'drain', http: { url: 'http://127.0.0.1:9/drain', timeout: '3s' } },
      { name: 'script', exec: { command: ['true'] } },
      { name: 'given', timeout: '45s', signal: { pidfile: '/run/t.pid' } },
    ]),
  ).toEqual({ checkpoint: 5_000, stop: 17_000, tell: 10_000, drain: 5_000, script: 30_000, given: 45_000 });
});
