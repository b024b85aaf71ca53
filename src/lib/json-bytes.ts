/**
 * `value` as UTF-8 JSON followed by `trailer`, written straight into one buffer. A manifest or
 * sync record of a 10 GiB tree is a 9 MB string; `Buffer.from(text + '\n')` (or a file write of
 * the string) first joins the two into a second 9 MB string, and the commit was the sync's
 * peak of memory.
 */
export function jsonBytes(value: unknown, trailer = ''): Buffer {
  const text = JSON.stringify(value);
  const length = Buffer.byteLength(text);
  const bytes = Buffer.allocUnsafe(length + Buffer.byteLength(trailer));
  bytes.write(text, 0);
  bytes.write(trailer, length);
  return bytes;
}
