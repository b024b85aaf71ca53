import { Writable } from 'node:stream';
import { pino } from 'pino';
import { compileConfig } from '../helpers/config.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { LogLimiter, suppressedLogLines } from '../../src/lib/log-limit.js';
import { silentLogger } from '../../src/lib/log.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { MetadataError } from '../../src/lib/errors.js';
import { SourceReport } from '../../src/providers/metadata/source-report.js';

/** Repeated error lines under faults: limited in the log, counted in metrics. */

function captured() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: pino({ level: 'debug' }, sink) };
}

describe('log limiter', () => {
  test('lets a few lines a window through, counts the rest, and says how many it dropped', () => {
    let now = 0;
    const limiter = new LogLimiter('test-window', { lines: 2, windowMs: 1000 }, () => now);
    expect([limiter.admit(), limiter.admit(), limiter.admit(), limiter.admit()]).toEqual([0, 0, undefined, undefined]);
    now = 1000;
    expect(limiter.admit()).toBe(2);
    expect(limiter.admit()).toBe(0);
    expect(suppressedLogLines().get('test-window')).toBe(2);
  });
});

describe('a metadata source that flaps between failing and answering', () => {
  test('writes at most 5 lines a minute instead of two lines per flap, and every read is still reported', () => {
    const { lines, log } = captured();
    const reads: boolean[] = [];
    const report = new SourceReport('flappy/source', { log, onRead: (read) => reads.push(read.ok) });
    for (let flap = 0; flap < 100; flap += 1) {
      report.fail(new MetadataError('ERR_METADATA_HTTP', `flappy/source: HTTP ${flap % 2 ? 500 : 503}`, 500), 1);
      report.ok(1, 200);
    }
    expect(reads).toHaveLength(200);
    expect(lines).toHaveLength(5);
    expect(suppressedLogLines().get('flappy/source')).toBe(195);
  });

  test('a run of identical failures is still one line, and the recovery one more', () => {
    const { lines, log } = captured();
    const report = new SourceReport('steady/source', { log, onRead: () => undefined });
    for (let i = 0; i < 10; i += 1) report.fail(new MetadataError('ERR_METADATA_HTTP', 'steady/source: HTTP 503', 503), 1);
    report.ok(1, 200);
    expect(lines.map((line) => line.msg)).toEqual([
      'metadata steady/source: steady/source: HTTP 503; retrying with backoff',
      'metadata steady/source: answering again after 10 failed reads',
    ]);
  });

  test('the dropped lines are counted in preemptd_log_lines_suppressed_total', async () => {
    const { log } = captured();
    const report = new SourceReport('counted/source', { log, onRead: () => undefined });
    for (let flap = 0; flap < 10; flap += 1) {
      report.fail(new MetadataError('ERR_METADATA_HTTP', 'counted/source: HTTP 500', 500), 1);
      report.ok(1, 200);
    }
    const metrics = createMetrics(createDaemon({ config: compileConfig({ stateDir: '/tmp/preemptd-unused' }), log: silentLogger() }), { processMetrics: false });
    try {
      expect(await metrics.render()).toContain('preemptd_log_lines_suppressed_total{source="counted/source"} 15');
      expect(await metrics.render()).toContain('preemptd_log_lines_suppressed_total{source="counted/source"} 15');
    } finally {
      metrics.close();
    }
  });
});
