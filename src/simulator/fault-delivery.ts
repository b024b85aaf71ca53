import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** One answer as the cloud gave it (or as a fault rewrote it). */
export interface Answer {
  status: number;
  headers: OutgoingHttpHeaders;
  body: string;
}

/** Runs the cloud's handler with `end` caught, so a fault can rewrite the answer before it leaves. */
export function captureAnswer(response: ServerResponse, handle: () => void, deliver: (answer: Answer) => void): void {
  const { writeHead, end } = response;
  let status = 200;
  let headers: OutgoingHttpHeaders = {};
  response.writeHead = ((code: number, ...rest: unknown[]) => {
    status = code;
    const given = rest.find((item) => typeof item === 'object' && item !== null);
    if (given) headers = { ...headers, ...(given as OutgoingHttpHeaders) };
    return response;
  }) as typeof response.writeHead;
  response.end = ((chunk?: unknown) => {
    response.writeHead = writeHead;
    response.end = end;
    const body = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
    deliver({ status, headers, body });
    return response;
  }) as typeof response.end;
  handle();
}

function withoutLength(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'content-length'));
}

export function send(response: ServerResponse, answer: Answer): void {
  if (response.writableEnded || response.destroyed) return;
  const body = Buffer.from(answer.body);
  response.writeHead(answer.status, { ...withoutLength(answer.headers), 'Content-Length': body.length });
  response.end(body);
}

/** HTTP 200 whose body never ends: 64 KiB chunks as fast as the client reads them, until it leaves. */
export function endless(response: ServerResponse, headers: OutgoingHttpHeaders): void {
  if (response.writableEnded || response.destroyed) return;
  response.writeHead(200, { ...withoutLength(headers), 'Content-Type': 'text/plain' });
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const pump = () => {
    while (!response.destroyed && response.write(chunk));
  };
  response.on('drain', pump);
  pump();
}

/** Headers at once, then the body one byte per `pauseMs`; stops when the client leaves. */
export function drip(response: ServerResponse, answer: Answer, pauseMs: number): void {
  if (response.writableEnded || response.destroyed) return;
  const body = Buffer.from(answer.body);
  response.writeHead(answer.status, { ...withoutLength(answer.headers), 'Content-Length': body.length });
  response.flushHeaders();
  let sent = 0;
  const timer = setInterval(() => {
    if (response.destroyed) return clearInterval(timer);
    sent += 1;
    if (sent >= body.length) {
      clearInterval(timer);
      response.end(body.subarray(sent - 1));
    } else response.write(body.subarray(sent - 1, sent));
  }, pauseMs);
  response.once('close', () => clearInterval(timer));
}
