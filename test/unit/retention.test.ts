import type { SnapshotRecord } from '../../src/snapshots/catalog.js';
import type { Manifest } from '../../src/snapshots/manifest.js';
import { planRetention } from '../../src/snapshots/retention.js';

/** Which snapshots a prune keeps, and why, on records whose times are set by hand. */

const HOUR = 60 * 60_000;
const NOW = Date.parse('2026-04-20T12:00:00Z');

/** A snapshot finished `hoursAgo` before NOW and written then. */
function record(name: string, hoursAgo: number, complete = true): SnapshotRecord {
  const at = NOW - hoursAgo * HOUR;
  return { name: `snapshots/${name}.json`, modified: at, size: 100, manifest: { finishedAt: new Date(at).toISOString(), complete } as Manifest };
}

const kept = (plan: ReturnType<typeof planRetention>) => Object.fromEntries(plan.keep.map(({ record: kept, reasons }) => [kept.name.slice(10, -5), reasons]));

// Newest first, as readCatalog gives them.
const snapshots = [record('e', 1), record('d', 30, false), record('c', 50), record('b', 200), record('a', 400)];

test('keep-last counts the newest, complete or not; the pointer and the grace keep theirs; the newest complete manifest before the grace is kept', () => {
  const plan = planRetention(snapshots, 'snapshots/e.json', { keepLast: 1, graceMs: 24 * HOUR }, NOW);
  expect(kept(plan)).toEqual({ e: ['latest', 'last', 'grace'], c: ['latest-at-grace'] });
  expect(plan.drop.map((dropped) => dropped.name)).toEqual(['snapshots/d.json', 'snapshots/b.json', 'snapshots/a.json']);
});

test('keep-within keeps by finishedAt; either rule keeps a snapshot', () => {
  const plan = planRetention(snapshots, 'snapshots/e.json', { keepLast: 2, keepWithinMs: 9 * 24 * HOUR, graceMs: 0 }, NOW);
  expect(kept(plan)).toEqual({ e: ['latest', 'last', 'within', 'latest-at-grace'], d: ['last', 'within'], c: ['within'], b: ['within'] });
  expect(plan.drop.map((dropped) => dropped.name)).toEqual(['snapshots/a.json']);
});

test('the pointer is kept even when it is old and no policy names it', () => {
  const plan = planRetention(snapshots, 'snapshots/a.json', { keepLast: 0, graceMs: 0 }, NOW);
  expect(kept(plan)).toEqual({ e: ['latest-at-grace'], a: ['latest'] });
});
