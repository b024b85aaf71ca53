import { z } from 'zod';
import { duration, noticeKind } from './fields.js';
import type { NodeSignal } from './types.js';

/** `kubernetes.signals` entries: a name, exactly one of taint, label or condition, a kind and a deadline. */
export function nodeSignal() {
  return z
    .strictObject({
      name: z.string().regex(/^[a-z0-9][-a-z0-9]*$/, { message: 'expected a name of lowercase letters, digits and -, such as karpenter-disrupted' }),
      taint: z.string().min(1).optional(),
      label: z.string().min(1).optional(),
      condition: z.string().min(1).optional(),
      value: z.string().optional(),
      status: z.enum(['True', 'False', 'Unknown'], { message: 'expected True, False or Unknown' }).optional(),
      message: z.string().min(1).optional(),
      kind: noticeKind(),
      deadline: duration().nullable(),
    })
    .refine((signal) => [signal.taint, signal.label, signal.condition].filter((key) => key !== undefined).length === 1, {
      message: 'expected exactly one of taint, label or condition (the key or condition type to watch on the Node)',
    })
    .refine((signal) => signal.condition !== undefined || (signal.status === undefined && signal.message === undefined), {
      message: 'status and message apply to a condition only',
    });
}

type NodeSignalSetting = z.output<ReturnType<typeof nodeSignal>>;

export function compileNodeSignal({ deadline, ...signal }: NodeSignalSetting): NodeSignal {
  return { ...signal, deadlineMs: deadline };
}

export function nodeSignalSetting({ deadlineMs, ...signal }: NodeSignal): NodeSignalSetting {
  return { ...signal, deadline: deadlineMs };
}
