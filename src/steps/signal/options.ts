import { z } from 'zod';
import { duration, regex, signalName } from '../../config/fields.js';
import { showValue } from '../../lib/format.js';
import type { Pattern } from '../../lib/pattern.js';

/** Which processes to signal; exactly one per step. */
export type SignalTarget =
  | { kind: 'pid'; pid: number }
  | { kind: 'pidfile'; path: string }
  | { kind: 'match'; pattern: Pattern }
  | { kind: 'unit'; unit: string; action: 'kill' | 'stop' }
  | { kind: 'cgroup'; path: string }
  | { kind: 'gpu' };

export interface SignalOptions {
  target: SignalTarget;
  signal: NodeJS.Signals;
  /** After the last signal, how long to wait for the targets to be gone; 0: do not wait. */
  waitExitMs: number;
  killAfterMs: number | null;
  /** No matching process is a success (true) or a failure (false). */
  missingOk: boolean;
}

const TARGET_KEYS = ['pid', 'pidfile', 'match', 'unit', 'cgroup', 'gpu'] as const;
/** How long SIGKILLed processes get to vanish when `waitExit` is not given. */
const KILL_CONFIRM_MS = 5000;

const pid = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number <= 1) {
    ctx.addIssue({ code: 'custom', message: `got ${showValue(value)}: expected a process id greater than 1` });
    return z.NEVER;
  }
  return number;
});

const nonEmpty = (what: string) => z.string().trim().min(1, `expected ${what}`);

export const signalSchema = z
  .strictObject({
    pid: pid.optional(),
    pidfile: nonEmpty('the path of a pidfile').optional(),
    match: regex().optional(),
    unit: nonEmpty('a systemd unit name').optional(),
    action: z.enum(['kill', 'stop'], { message: 'expected kill or stop' }).optional(),
    cgroup: nonEmpty('a cgroup path').optional(),
    gpu: z.literal(true, { message: 'expected true (signal every process using a GPU)' }).optional(),
    signal: signalName().default('SIGTERM'),
    waitExit: duration().optional(),
    killAfter: duration().optional(),
    missingOk: z.boolean().default(true),
  })
  .superRefine((raw, ctx) => {
    const given = TARGET_KEYS.filter((key) => raw[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? `expected exactly one target: ${TARGET_KEYS.join(', ')}`
            : `got ${given.join(' and ')}: expected exactly one target of ${TARGET_KEYS.join(', ')}`,
      });
    }
    if (raw.action !== undefined && raw.unit === undefined) {
      ctx.addIssue({ code: 'custom', path: ['action'], message: 'action applies to a unit target only' });
    }
    if (raw.action === 'stop' && (raw.killAfter !== undefined || raw.waitExit !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['action'],
        message: 'action stop waits for systemd by itself: drop waitExit and killAfter (set TimeoutStopSec in the unit)',
      });
    }
  })
  .transform((raw): SignalOptions => {
    const target: SignalTarget =
      raw.pid !== undefined
        ? { kind: 'pid', pid: raw.pid }
        : raw.pidfile !== undefined
          ? { kind: 'pidfile', path: raw.pidfile }
          : raw.match !== undefined
            ? { kind: 'match', pattern: raw.match }
            : raw.unit !== undefined
              ? { kind: 'unit', unit: raw.unit, action: raw.action ?? 'kill' }
              : raw.cgroup !== undefined
                ? { kind: 'cgroup', path: raw.cgroup }
                : { kind: 'gpu' };
    const killAfterMs = raw.killAfter ?? null;
    return {
      target,
      signal: raw.signal,
      waitExitMs: raw.waitExit ?? (killAfterMs === null ? 0 : KILL_CONFIRM_MS),
      killAfterMs,
      missingOk: raw.missingOk,
    };
  });
