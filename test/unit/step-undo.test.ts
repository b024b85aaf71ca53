import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { Config, StepConfig } from '../../src/config/types.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { StepUndo } from '../../src/daemon/step-undo.js';
import type { AnyStepType, UndoContext } from '../../src/steps/types.js';

function setup() {
  const calls: Array<{ step: unknown; noticeId: string | undefined }> = [];
  const undoable = { type: 'undoable', undo: async (options: unknown, context: UndoContext) => void calls.push({ step: options, noticeId: context.noticeId }) } as unknown as AnyStepType;
  const failing = { type: 'failing', undo: async () => Promise.reject(new Error('API down')) } as unknown as AnyStepType;
  const plain = { type: 'plain' } as unknown as AnyStepType;
  const types = [undoable, failing, plain];
  const step = (name: string, type: string): StepConfig => ({ name, type, options: name, after: [], on: null, timeoutMs: 1000 });
  const config = { steps: [step('mark', 'undoable'), step('broken', 'failing'), step('other', 'plain')] } as unknown as Config;
  const daemon = new EventEmitter() as unknown as Daemon;
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const undo = new StepUndo({ daemon, config, log, lookup: (type) => types.find((candidate) => candidate.type === type) });
  return { calls, daemon, undo, lines, step };
}

describe('StepUndo', () => {
  it('undoes at start-up for a previous boot, then for each withdrawn notice with the config of the moment; a failure is logged', async () => {
    const { calls, daemon, undo, lines, step } = setup();
    daemon.emit('withdrawn', 'notice-1', 'cancelled');
    daemon.emit('reloaded', { steps: [step('renamed', 'undoable')] } as unknown as Config);
    daemon.emit('withdrawn', 'notice-2', 'cancelled');
    await undo.close();
    daemon.emit('withdrawn', 'notice-3', 'after close');
    expect(calls).toEqual([
      { step: 'mark', noticeId: undefined },
      { step: 'mark', noticeId: 'notice-1' },
      { step: 'renamed', noticeId: 'notice-2' },
    ]);
    expect(lines.join('')).toContain('could not take back what step broken did');
  });
});
