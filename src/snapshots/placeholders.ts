import type { HostFacts } from '../lib/host.js';
import type { Notice } from '../notice/notice.js';

export const PLACEHOLDERS = ['instanceId', 'noticeId', 'hostname', 'timestamp', 'kind'] as const;
export type PlaceholderValues = Record<(typeof PLACEHOLDERS)[number], string>;

/** Values for a notice: `{timestamp}` is when it was detected, in basic ISO form (20260411T222658Z). */
export function placeholderValues(notice: Notice, host: HostFacts): PlaceholderValues {
  return {
    instanceId: notice.instance.id ?? host.hostname,
    noticeId: notice.id,
    hostname: host.hostname,
    timestamp: notice.detectedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z'),
    kind: notice.kind,
  };
}

/** Replaces `{name}` placeholders it has a value for; values are made safe as one path segment of a key. */
export function fillPlaceholders(template: string, values: Partial<PlaceholderValues>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => values[name as keyof PlaceholderValues]?.replace(/[^A-Za-z0-9._-]/g, '-') ?? whole);
}
