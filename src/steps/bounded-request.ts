import type { IncomingHttpHeaders } from 'node:http';
import type { OptionsInit } from 'got';
import { loadGot } from '../lib/load-got.js';

/**
 * What the http step keeps of a response body: enough for any `until:` condition. A drain
 * endpoint that streams without end drove the agent to 6 GB RSS in 15 s when bodies were
 * read whole; past this the body is not read at all.
 */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface BoundedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first `limitBytes` of the body (UTF-8; a character cut at the limit shows as U+FFFD). */
  body: string;
  /** The body went on past `limitBytes`; the rest was not read (the connection is closed). */
  truncated: boolean;
}

/**
 * One request through got's stream API, keeping at most `limitBytes` of the body (0: none is
 * read, the answer is the status and headers). Rejects with got's errors, as the promise API does.
 */
export async function requestBounded(url: string, options: OptionsInit, limitBytes: number): Promise<BoundedResponse> {
  const { default: got } = await loadGot();
  const stream = got.stream(url, options);
  // Without a body option a stream request waits for one to be written (POST, PUT): there is none.
  if (options.body === undefined && options.json === undefined && options.form === undefined) stream.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let settled = false;
    const finish = (ended: boolean) => {
      if (settled) return;
      settled = true;
      if (!ended) stream.destroy();
      const truncated = size > limitBytes;
      resolve({ status, headers, body: Buffer.concat(chunks).toString('utf8', 0, Math.min(size, limitBytes)), truncated });
    };
    stream.once('response', (response: { statusCode: number; headers: IncomingHttpHeaders }) => {
      status = response.statusCode;
      headers = response.headers;
      if (limitBytes === 0) finish(false);
    });
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limitBytes) finish(false);
    });
    stream.once('end', () => finish(true));
    // `on`, not `once`: a late second error must not become an uncaught exception.
    stream.on('error', (error) => {
      if (settled) return;
      settled = true;
      reject(error);
    });
  });
}
