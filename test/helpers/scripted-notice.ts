import type { Notice } from '../../src/notice/notice.js';
import { testBytes } from './seed.js';

/** A notice as a provider would yield it; the deadline is `deadlineInMs` from now (null: advisory). */
export function scriptedNotice(kind: Notice['kind'], deadlineInMs: number | null, id = `aws-${kind}-${testBytes(8).toString('hex')}`): Notice {
  const now = Date.now();
  return {
    id,
    provider: 'aws',
    kind,
    deadline: deadlineInMs === null ? null : new Date(now + deadlineInMs),
    detectedAt: new Date(now),
    instance: { id: 'i-scripted' },
    raw: { scripted: true },
  };
}
