import { readFile } from 'node:fs/promises';
import { showValue } from '../lib/format.js';
import { durationProblem, formatDuration, parseDuration } from '../lib/duration.js';
import { PreemptdError, errorMessage } from '../lib/errors.js';

/**
 * Fault mode of the simulator: how each metadata request may be answered badly.
 * A spec reads `500:0.1,reset:0.05,hang-token:1`; docs/robustness.md lists every fault.
 */
export const FAULT_NAMES = [
  '500',
  '503',
  '429',
  '429-retry-after',
  '401',
  'reset',
  'hang',
  'hang-token',
  'drip',
  'truncated',
  'wrong-types',
  'html',
  'flicker',
  'notice-past',
  'notice-future',
  'retime',
  'early-return',
  'endless',
  'redirect',
] as const;

export type FaultName = (typeof FAULT_NAMES)[number];

/** What each fault does (docs/robustness.md says the same). */
export const FAULTS: Record<FaultName, string> = {
  '500': 'HTTP 500 with an error page',
  '503': 'HTTP 503 with an error page',
  '429': 'HTTP 429 without Retry-After',
  '429-retry-after': 'HTTP 429 with Retry-After (=seconds, default 1s)',
  '401': 'HTTP 401 even for a valid token (a 401 storm at high rates); never on the token PUT',
  reset: 'the connection is reset before any answer',
  hang: 'the request is accepted and never answered',
  'hang-token': 'the token PUT is accepted and never answered (the IMDSv2 hop-limit symptom); other requests are untouched',
  drip: 'the real answer, its body written one byte at a time (=pause per byte, default 200ms)',
  truncated: 'HTTP 200 with the real body cut in half (a sample JSON document cut short when the real answer has no body)',
  'wrong-types': 'HTTP 200 with valid JSON whose values have the wrong types',
  html: 'HTTP 200 with an HTML error page, as a proxy or captive portal sends',
  flicker: 'an answer that shows a notice is replaced by the cloud\'s "nothing pending" answer: the notice disappears and comes back',
  'notice-past': 'a notice shown by trigger gets a time in the past (=how far, default 10m)',
  'notice-future': 'a notice shown by trigger gets a time far ahead (=how far, default 87600h, 10 years)',
  retime: "an answer showing a notice gets its time recomputed as request time + D (=D, default 2m), as AWS's own metadata mock does (AWS, Alibaba, Tencent)",
  'early-return': 'a hanging GET (wait_for_change) is answered at once with the value and ETag unchanged, as a proxy that ignores it does (GCP)',
  endless: 'HTTP 200 with a body that never ends, sent as fast as the client reads it, until the client hangs up',
  redirect: 'HTTP 302 to the same path on another host (127.0.0.2, same port), as a misrouting proxy sends; a client must not follow it',
};

/** Faults whose `=value` is a duration, with its default in ms. */
export const PARAMETERS: Partial<Record<FaultName, number>> = {
  '429-retry-after': 1000,
  drip: 200,
  'notice-past': 10 * 60_000,
  'notice-future': 87_600 * 3_600_000,
  retime: 2 * 60_000,
};

/** Faults that shape a triggered notice rather than a request. */
export const NOTICE_FAULTS: ReadonlySet<FaultName> = new Set(['notice-past', 'notice-future']);

export interface FaultEntry {
  name: FaultName;
  /** Chance per request (per triggered notice for notice faults), 0 to 1. */
  rate: number;
  /** The `=value` in ms, or the fault's default; undefined for faults without one. */
  paramMs?: number;
}

/** A parsed spec; `entries` keep the order given, which is the order faults are drawn in. */
export interface FaultSpec {
  entries: FaultEntry[];
}

export const NO_FAULTS: FaultSpec = { entries: [] };

function specError(entry: string, problem: string): PreemptdError {
  return new PreemptdError('ERR_USAGE', `fault spec entry ${showValue(entry)}: ${problem}`);
}

function parseRate(entry: string, text: string): number {
  const percent = text.endsWith('%');
  const number = Number(percent ? text.slice(0, -1) : text);
  const rate = percent ? number / 100 : number;
  if (text.trim() === '' || !Number.isFinite(rate) || rate < 0 || rate > 1) {
    throw specError(entry, `rate ${showValue(text)} is not a chance between 0 and 1 (or a percentage such as 10%)`);
  }
  return rate;
}

/**
 * Parses `name[=value][:rate]` entries separated by commas or new lines; `#` starts a
 * comment. The rate defaults to 1 (every request). An empty spec means no faults.
 * Throws ERR_USAGE naming the entry and what was expected.
 */
export function parseFaultSpec(text: string): FaultSpec {
  const entries: FaultEntry[] = [];
  const pieces = text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join(',')
    .split(',')
    .map((piece) => piece.trim())
    .filter((piece) => piece !== '');
  for (const piece of pieces) {
    const match = /^([a-z0-9-]+)(?:=([^:]*))?(?::(.*))?$/i.exec(piece);
    if (!match) throw specError(piece, 'expected name[=value][:rate], such as 500:0.1, drip=500ms:0.2 or hang-token');
    const [, rawName, value, rateText] = match;
    const name = rawName!.toLowerCase() as FaultName;
    if (!(FAULT_NAMES as readonly string[]).includes(name)) throw specError(piece, `unknown fault ${showValue(rawName)}; expected one of ${FAULT_NAMES.join(', ')}`);
    if (entries.some((entry) => entry.name === name)) throw specError(piece, `fault ${name} is given twice`);
    const rate = rateText === undefined ? 1 : parseRate(piece, rateText);
    const defaultParam = PARAMETERS[name];
    let paramMs = defaultParam;
    if (value !== undefined) {
      if (defaultParam === undefined) throw specError(piece, `fault ${name} takes no =value`);
      paramMs = parseDuration(value);
      if (paramMs === undefined) throw specError(piece, `got ${showValue(value)}: ${durationProblem(value)}`);
    }
    entries.push({ name, rate, ...(paramMs === undefined ? {} : { paramMs }) });
  }
  if (entries.some((entry) => entry.name === 'notice-past') && entries.some((entry) => entry.name === 'notice-future')) {
    throw new PreemptdError('ERR_USAGE', 'fault spec: notice-past and notice-future cannot both be given; a notice has one time');
  }
  return { entries };
}

/** `--faults` value: a spec, or `@path` to read the spec from a file. */
export async function loadFaultSpec(value: string): Promise<FaultSpec> {
  if (!value.startsWith('@')) return parseFaultSpec(value);
  const path = value.slice(1);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PreemptdError('ERR_USAGE', `cannot read fault spec file ${path}: ${errorMessage(error)}`);
  }
  try {
    return parseFaultSpec(text);
  } catch (error) {
    throw new PreemptdError('ERR_USAGE', `${path}: ${errorMessage(error)}`);
  }
}

/** The spec written back in its own syntax, for logs. */
export function formatFaultSpec(spec: FaultSpec): string {
  return spec.entries
    .map((entry) => {
      const param = entry.paramMs !== undefined && entry.paramMs !== PARAMETERS[entry.name] ? `=${formatDuration(entry.paramMs)}` : '';
      return `${entry.name}${param}${entry.rate === 1 ? '' : `:${entry.rate}`}`;
    })
    .join(',');
}
