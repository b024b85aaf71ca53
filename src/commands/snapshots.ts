import { durationProblem, parseDuration } from '../lib/duration.js';
import { PreemptdError } from '../lib/errors.js';
import { formatBytes, showValue } from '../lib/format.js';
import { createLogger } from '../lib/log.js';
import { logFormatFor } from '../lib/log-text.js';
import { readCatalog, type Catalog } from '../snapshots/catalog.js';
import { prune, type PruneReport } from '../snapshots/prune.js';
import { CHUNK_REUSE_WINDOW_MS } from '../snapshots/repository.js';
import type { RetentionPolicy } from '../snapshots/retention.js';
import { formatLocation } from '../stores/location.js';
import { openStore } from '../stores/registry.js';
import { locationArgument } from './location-arg.js';

export interface SnapshotsArgs {
  action: string;
  prefix: string;
  json: boolean;
  keepLast?: number;
  keepWithin?: string;
  grace: string;
  apply: boolean;
  endpoint?: string;
  forcePathStyle?: boolean;
  region?: string;
  logLevel: string;
  logFormat?: string;
}

const PRUNE_ONLY = [
  ['keepLast', '--keep-last'],
  ['keepWithin', '--keep-within'],
  ['apply', '--apply'],
] as const;

/** `preemptd snapshots list|prune PREFIX`: what a dedup repository holds, and its retention. */
export async function snapshotsCommand(args: SnapshotsArgs): Promise<void> {
  const location = locationArgument('PREFIX', args.prefix);
  const policy = args.action === 'prune' ? retentionPolicy(args) : undefined;
  if (!policy) {
    const given = PRUNE_ONLY.filter(([key]) => args[key] !== undefined && args[key] !== false).map(([, flag]) => flag);
    if (given.length) throw new PreemptdError('ERR_USAGE', `${given.join(', ')}: only snapshots prune takes ${given.length === 1 ? 'it' : 'them'}`);
  }
  const isTTY = process.stdout.isTTY === true;
  const asJson = args.json || !isTTY;
  // Logs go to stderr: stdout carries the listing or the report.
  const log = createLogger({ level: args.logLevel as 'info', format: logFormatFor(args.logFormat, process.stderr.isTTY === true), destination: process.stderr });
  const controller = new AbortController();
  const store = await openStore(location, {
    endpoint: args.endpoint,
    forcePathStyle: args.forcePathStyle,
    region: args.region,
    partSize: 8 * 1024 * 1024,
    queueSize: 1,
    concurrency: 4,
    signal: controller.signal,
    log,
  });
  try {
    if (!policy) {
      printCatalog(await readCatalog(store, location), asJson);
      return;
    }
    if (policy.graceMs < 2 * CHUNK_REUSE_WINDOW_MS) {
      log.warn({ grace: args.grace }, 'a grace under 2h may delete chunks a commit running now relies on (docs/snapshot.md, "Retention")');
    }
    const report = await prune(store, location, { policy, apply: args.apply, log });
    printPrune(report, formatLocation(location), asJson);
  } finally {
    await store.close();
  }
}

function retentionPolicy(args: SnapshotsArgs): RetentionPolicy {
  if (args.keepLast === undefined && args.keepWithin === undefined) {
    throw new PreemptdError('ERR_USAGE', 'snapshots prune needs a policy: --keep-last N and/or --keep-within DURATION (e.g. --keep-last 3 --keep-within 7d)');
  }
  if (args.keepLast !== undefined && !(Number.isInteger(args.keepLast) && args.keepLast >= 0)) {
    throw new PreemptdError('ERR_USAGE', `--keep-last: got ${showValue(args.keepLast)}: expected a whole number of snapshots, 0 or more`);
  }
  return { keepLast: args.keepLast, keepWithinMs: args.keepWithin === undefined ? undefined : duration('--keep-within', args.keepWithin), graceMs: duration('--grace', args.grace) };
}

const DAYS = /^\s*(\d+(?:\.\d+)?)d\s*$/;

/** A duration as everywhere else (`36h`), or in days (`7d`), the unit retention is thought in. */
function duration(flag: string, text: string): number {
  const days = DAYS.exec(text);
  const ms = days ? Math.round(Number(days[1]) * 24 * 60 * 60_000) : parseDuration(text);
  if (ms === undefined) throw new PreemptdError('ERR_USAGE', `${flag}: got ${showValue(text)}: ${durationProblem(text)}, or days such as 7d`);
  return ms;
}

function printCatalog(catalog: Catalog, asJson: boolean): void {
  const rows = catalog.snapshots.map(({ name, manifest }) => ({
    name,
    finishedAt: manifest.finishedAt,
    files: manifest.files.filter((entry) => entry.type === 'file').length,
    bytes: manifest.bytesDone,
    complete: manifest.complete,
    latest: name === catalog.latest,
  }));
  if (asJson) {
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
    for (const refused of catalog.refused) process.stdout.write(`${JSON.stringify({ name: refused.name, refused: refused.reason })}\n`);
    if (catalog.pointerRefused !== undefined) process.stdout.write(`${JSON.stringify({ name: 'latest.json', refused: catalog.pointerRefused })}\n`);
    return;
  }
  const table = [
    ['NAME', 'FINISHED', 'FILES', 'BYTES', 'COMPLETE', ''],
    ...rows.map((row) => [row.name, row.finishedAt, String(row.files), formatBytes(row.bytes), row.complete ? 'yes' : 'no', row.latest ? 'latest' : '']),
  ];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  for (const row of table) process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`);
  if (!rows.length) process.stdout.write('(no snapshots)\n');
  for (const refused of catalog.refused) process.stdout.write(`refused ${refused.name}: ${refused.reason}\n`);
  if (catalog.pointerRefused !== undefined) process.stdout.write(`refused latest.json: ${catalog.pointerRefused}\n`);
}

function printPrune(report: PruneReport, where: string, asJson: boolean): void {
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ at: where, ...report })}\n`);
    return;
  }
  const verb = report.applied ? 'deleted' : 'would delete';
  for (const name of report.manifests) process.stdout.write(`${verb} ${name}\n`);
  for (const { name, reasons } of report.kept) process.stdout.write(`keep ${name} (${reasons.join(', ')})\n`);
  const leftovers = report.leftovers ? ` and ${report.leftovers} .partial files a killed writer left` : '';
  process.stdout.write(`${where}: ${verb} ${report.manifests.length} manifests and ${report.objects} packs and chunks${leftovers}, ${formatBytes(report.bytes)}`);
  process.stdout.write(`${report.objectsInGrace ? `; ${report.objectsInGrace} unreferenced packs and chunks are within the grace and kept` : ''}${report.applied ? '' : ' (dry run: add --apply to delete)'}\n`);
}
