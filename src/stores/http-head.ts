/** The HTTP/1.1 heads body-reader.ts writes and reads, without node:http. */

/** What an answer's head says about its body and its connection. */
export interface Head {
  status: number;
  /** The connection ends with this answer: `Connection: close`, or HTTP/1.0. */
  close: boolean;
  length: number | undefined;
  /** A Transfer-Encoding was given: the body is not framed by `length`. */
  encoded: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** A GET's head: headers as given, in their order. */
export function requestHead(path: string, headers: Record<string, string>): string {
  let text = `GET ${path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

/**
 * Where the blank line ending a head starts in buffer[0, filled), of which the last `added`
 * bytes are new; -1 while it has not come. The bytes past `filled` are an earlier answer's.
 */
export function headEnd(buffer: Buffer, filled: number, added: number): number {
  const end = buffer.indexOf(HEAD_END, Math.max(0, filled - added - 3));
  return end !== -1 && end + HEAD_END.length <= filled ? end : -1;
}

/** The head before its blank line, or what is wrong with it (never a header's value: it may be secret). */
export function parseHead(text: string): Head | string {
  const lines = text.split('\r\n');
  const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!statusLine) return 'a malformed status line';
  const head: Head = { status: Number(statusLine[2]), close: statusLine[1] === '0', length: undefined, encoded: false };
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return 'a malformed header line';
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value)) return 'an invalid Content-Length';
      if (head.length !== undefined && head.length !== Number(value)) return 'two differing Content-Length values';
      head.length = Number(value);
    } else if (name === 'transfer-encoding') head.encoded = true;
    else if (name === 'connection' && /(?:^|,)\s*close\s*(?:,|$)/i.test(value)) head.close = true;
  }
  return head;
}
