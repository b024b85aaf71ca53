import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-preemptd-signature';
export const TIMESTAMP_HEADER = 'x-preemptd-timestamp';

/**
 * Signature headers for a body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 * The timestamp is inside the signed text so a receiver can reject replays
 * (docs/webhooks.md shows how).
 */
export function signatureHeaders(secret: string, body: string, nowMs: number): Record<string, string> {
  const t = Math.floor(nowMs / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return { [SIGNATURE_HEADER]: `t=${t},v1=${v1}`, [TIMESTAMP_HEADER]: String(t) };
}
