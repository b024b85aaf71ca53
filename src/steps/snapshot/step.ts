import { snapshotOptionsSchema, type SnapshotOptions } from '../../snapshots/options.js';
import type { StepType } from '../types.js';
import { checkSnapshotStep } from './check.js';

/**
 * `snapshot:` uploads files to object storage inside the notice window (docs/snapshot.md).
 * The uploader and the cloud SDKs load on first run only: an idle agent never pays for them.
 */
export const snapshotStep = {
  type: 'snapshot',
  schema: snapshotOptionsSchema,
  // Uploading is worth doing on an advisory notice too; it takes what the window gives.
  destructive: false,
  defaultTimeoutMs: () => 60_000,
  async run(options, context) {
    const { runSnapshot } = await import('../../snapshots/run.js');
    return runSnapshot(options, context);
  },
  describe(options) {
    const compression = options.mode === 'archive' && options.compression !== 'none' ? `, ${options.compression}` : '';
    const order = options.priority === 'path' ? 'by path' : `${options.priority} first`;
    if (options.sync !== null) return `upload what sync ${options.sync} has not stored yet (${order}), then commit a complete snapshot`;
    return `upload ${options.paths.join(', ')} to ${options.to} (${options.mode}${compression}, ${order})`;
  },
  check: checkSnapshotStep,
} satisfies StepType<SnapshotOptions>;
