import { request as httpRequest, type Agent as HttpAgent, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { PreemptdError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { crc32Header, type Part } from './parts.js';
import { rangeHeader } from './range.js';
import type { BodyReader } from './body-reader.js';
import type { ByteRange, ReadInto } from './types.js';
import type { FinalizeHandler, FinalizeHandlerArguments, HandlerExecutionContext, HttpRequest, MetadataBearer } from '@smithy/types';

/**
 * Where the SDK sent a command, less its key: the same for every key of the bucket.
 * The region is the one the SDK signed with (after any region redirect it followed).
 */
interface Template {
  protocol: string;
  hostname: string;
  port: number | undefined;
  /** The path before the key: `/bucket/` (path style) or `/` (virtual-hosted). */
  prefix: string;
  query: Record<string, string>;
  region: string;
  signer: SignatureV4;
}

/** The commands sent directly once the SDK has sent one of them. */
type DirectCommand = 'GetObjectCommand' | 'PutObjectCommand' | 'HeadObjectCommand';

/** A direct request ready to send: where, and its signed headers. */
interface SignedRequest {
  method: string;
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined;
  /** The path and query, encoded. */
  path: string;
  headers: Record<string, string>;
}

/** What a direct HeadObject found: the object's size and time, or `missing` (a 404). */
export type DirectHead = { size: number; modified: number } | 'missing';

/**
 * How long a direct request may go without a byte either way before it is abandoned (and, if
 * nothing has come back yet, made again through the SDK). S3's own guidance for requests under
 * 512 KB, whose median latency is tens of milliseconds, is to retry one after 2 seconds; these
 * are chunks of a few MiB whose bytes flow the whole time, so only a server gone silent (an
 * accepted connection never answered, a body stalled) stays idle. 5 s, as the SDK's connect
 * timeout (s3.ts), leaves a slow emulator on a loaded machine room to answer, and a hung request
 * costs at most a sixth of a 30-second notice window instead of all of it.
 */
export const DIRECT_IDLE_TIMEOUT_MS = 5_000;

/** What a direct GetObject got: its status (200, or for a range 206 or 416) and body. */
export interface DirectBody {
  status: number;
  body: Readable;
}

/** The HTTP status of an error the SDK threw (a HEAD's 404 or a GET's 416 has no error code to go by). */
export function sdkStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** The statuses a GET answers with when it worked: a range adds 206 (its bytes) and 416 (it starts past the end). */
function gotObject(status: number | undefined, range: ByteRange | undefined): boolean {
  return status === 200 || (range !== undefined && (status === 206 || status === 416));
}

/**
 * Destroys `sent` (and its answer, with an error naming `what`) once its socket has been idle
 * for `idleMs` while waiting on the server. Body bytes its reader has not taken yet mean the
 * reader paused (a slow disk), not the server: the watch then starts over, and once more when
 * the reader has just caught up (the socket has read nothing since it was found paused). Node's
 * own request timeout is not used: it fires once per request, so a pause would end the watch.
 */
function abandonWhenIdle(sent: ClientRequest, answer: () => IncomingMessage | undefined, idleMs: number, what: string): void {
  sent.once('socket', (socket) => {
    /** The socket's bytes read when its reader was last found paused. */
    let readAtPause: number | undefined;
    const idle = () => {
      const paused = (answer()?.readableLength ?? 0) > 0;
      if (paused || readAtPause === socket.bytesRead) {
        readAtPause = paused ? socket.bytesRead : undefined;
        socket.setTimeout(idleMs);
        return;
      }
      const silent = new PreemptdError('ERR_STORE', `${what}: the S3 server sent nothing for ${idleMs} ms`);
      answer()?.destroy(silent);
      sent.destroy(silent);
    };
    socket.setTimeout(idleMs);
    socket.on('timeout', idle);
    // 'close' comes before a kept-alive socket goes back to the pool, whose agent then clears its timeout.
    sent.once('close', () => socket.removeListener('timeout', idle));
  });
}

/** A key as the SDK puts it in a path: each segment URI-encoded (also !'()*), slashes kept. */
function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/**
 * GetObject, HeadObject and single-part PutObject without the SDK's per-request work. Restore
 * fetches, and a dedup snapshot or sync looks for and stores, thousands of chunks of a few
 * hundred KiB; measured on
 * loopback, the SDK's middleware and (de)serialising cost 0.81-0.92 ms of CPU per GET against
 * 0.30-0.38 ms for a plain request (3.1-3.5 against 1.1-1.5 CPU-s/GB on 256 KiB objects); an
 * agent's background sync of 1 GiB (bench/sync-memory.bench.ts, a HEAD and a PUT per chunk)
 * took 7.9-8.2 CPU-s/GB and 413-417 MiB peak RSS through the SDK, 4.2-4.3 CPU-s/GB and
 * 286-292 MiB with its PUTs and HEADs sent here. The first command of each kind goes
 * through the SDK, which resolves the endpoint, region and credentials; its signed request,
 * seen after signing, is the template for the next ones, signed here with the SDK's own SigV4
 * signer and credentials. A PUT carries its CRC32, which S3 checks, and is signed as
 * UNSIGNED-PAYLOAD as the SDK's own puts are (s3.ts). Anything but a 200 (for a ranged GET,
 * a 206 or 416 too; otherwise an error, a redirect, a throttle) and any failure to send is
 * left to the SDK: the caller asks the SDK, with its retries and error parsing; so is a
 * request idle for `idleTimeoutMs` before its answer came (a body the server stops sending
 * after it fails the read instead).
 */
export class DirectRequests {
  private readonly templates = new Map<DirectCommand, Template>();

  constructor(
    private readonly client: S3Client,
    private readonly agents: { http: HttpAgent; https: HttpsAgent },
    private readonly reader: BodyReader,
    private readonly log: Logger,
    private readonly idleTimeoutMs = DIRECT_IDLE_TIMEOUT_MS,
  ) {
    client.middlewareStack.addRelativeTo(
      (next: FinalizeHandler<object, MetadataBearer>, context: HandlerExecutionContext) => async (args: FinalizeHandlerArguments<object>) => {
        const command = context.commandName as DirectCommand;
        const learn = () => {
          if (!this.templates.has(command)) this.learn(command, args.request as HttpRequest, (args.input as { Key?: string }).Key);
        };
        if (command !== 'GetObjectCommand' && command !== 'PutObjectCommand' && command !== 'HeadObjectCommand') return next(args);
        try {
          const result = await next(args);
          // Only a request that worked: one the SDK then redirected to another region would not.
          const status = (result.response as { statusCode?: number }).statusCode;
          if (status === 200 || (command === 'GetObjectCommand' && status === 206)) learn();
          return result;
        } catch (error) {
          // A HEAD's 404 worked too (a key a sync has not stored yet is the usual answer); the SDK throws it as NotFound.
          if (command === 'HeadObjectCommand' && sdkStatus(error) === 404) learn();
          throw error;
        }
      },
      { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'preemptdLearnDirectTemplate' },
    );
  }

  private learn(command: DirectCommand, request: HttpRequest, key: string | undefined): void {
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(String(request.headers.authorization ?? ''))?.[1];
    const encoded = key === undefined ? undefined : encodeKey(key);
    if (!region || !encoded || !request.path.endsWith(encoded)) return;
    this.templates.set(command, {
      protocol: request.protocol,
      hostname: request.hostname,
      port: request.port,
      prefix: request.path.slice(0, request.path.length - encoded.length),
      query: Object.fromEntries(Object.entries(request.query ?? {}).filter((entry): entry is [string, string] => typeof entry[1] === 'string')),
      region,
      signer: new SignatureV4({ credentials: this.client.config.credentials, region, service: 's3', sha256: this.client.config.sha256, uriEscapePath: false, applyChecksum: true }),
    });
  }

  /**
   * The object's body (or `range`'s: see DirectBody), or undefined when the SDK should fetch it
   * (not learnt yet, or any other answer).
   */
  async get(key: string, range: ByteRange | undefined, signal: AbortSignal): Promise<DirectBody | undefined> {
    const response = await this.send('GetObjectCommand', key, range ? { range: rangeHeader(range) } : {}, undefined, signal);
    if (response && gotObject(response.statusCode, range)) return { status: response.statusCode!, body: response };
    response?.resume();
    signal.throwIfAborted();
    return undefined;
  }

  /** The object's size and time, `missing`, or undefined when the SDK should ask (not learnt yet, or anything but a 200 or 404). */
  async head(key: string, signal: AbortSignal): Promise<DirectHead | undefined> {
    const response = await this.send('HeadObjectCommand', key, {}, undefined, signal);
    response?.resume();
    signal.throwIfAborted();
    if (response?.statusCode === 404) return 'missing';
    const size = Number(response?.headers['content-length']);
    const modified = Date.parse(response?.headers['last-modified'] ?? '');
    return response?.statusCode === 200 && Number.isSafeInteger(size) && Number.isFinite(modified) ? { size, modified } : undefined;
  }

  /** Stores `part` as the object `key`; false when the SDK should (not learnt yet, or anything but a 200). */
  async put(key: string, part: Part, signal: AbortSignal): Promise<boolean> {
    const headers = { 'content-length': String(part.bytes.length), 'x-amz-checksum-crc32': crc32Header(part.crc32), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
    const response = await this.send('PutObjectCommand', key, headers, part.bytes, signal);
    response?.resume();
    signal.throwIfAborted();
    return response?.statusCode === 200;
  }

  /**
   * GetObject straight into `into` (body-reader.ts): only an answer of exactly `into.length`
   * bytes (a 206 for a range, a 200 for a whole object). Undefined when the caller should fetch
   * it with the store's `get` (not learnt yet, any other answer, a connection that failed or
   * went silent): that way reads any answer, and ends at the SDK's retries and errors.
   */
  async getInto(key: string, range: ByteRange | undefined, into: Buffer, signal: AbortSignal): Promise<ReadInto | undefined> {
    const request = await this.signed('GetObjectCommand', key, range ? { range: rangeHeader(range) } : {});
    if (!request) return undefined;
    const answer = await this.reader
      .get({ protocol: request.protocol, hostname: request.hostname, port: request.port, path: request.path, headers: request.headers, into, accept: range ? [206] : [200], signal })
      .catch((error: unknown) => {
        signal.throwIfAborted();
        this.log.debug({ key, err: error }, 'a direct read into a buffer failed: fetched again with get');
        return undefined;
      });
    return answer?.read ? { length: into.length, more: false } : undefined;
  }

  /** What to send for `command` on `key`, signed; undefined when it is not learnt yet. */
  private async signed(command: DirectCommand, key: string, headers: Record<string, string>): Promise<SignedRequest | undefined> {
    const template = this.templates.get(command);
    if (!template) return undefined;
    const host = template.port === undefined ? template.hostname : `${template.hostname}:${template.port}`;
    const method = command === 'PutObjectCommand' ? 'PUT' : command === 'HeadObjectCommand' ? 'HEAD' : 'GET';
    const signed = await template.signer.sign({
      method,
      protocol: template.protocol,
      hostname: template.hostname,
      port: template.port,
      path: template.prefix + encodeKey(key),
      query: template.query,
      headers: { host, ...headers },
    } as HttpRequest);
    const query = new URLSearchParams(template.query).toString();
    return { method, protocol: template.protocol === 'https:' ? 'https:' : 'http:', hostname: template.hostname, port: template.port, path: `${signed.path}${query ? `?${query}` : ''}`, headers: signed.headers };
  }

  private async send(command: DirectCommand, key: string, headers: Record<string, string>, body: Buffer | undefined, signal: AbortSignal): Promise<IncomingMessage | undefined> {
    const request = await this.signed(command, key, headers);
    if (!request) return undefined;
    const { method } = request;
    const https = request.protocol === 'https:';
    return new Promise<IncomingMessage | undefined>((resolve) => {
      let answer: IncomingMessage | undefined;
      const sent = (https ? httpsRequest : httpRequest)(
        { method, host: request.hostname, port: request.port, path: request.path, headers: request.headers, agent: https ? this.agents.https : this.agents.http, signal },
        (response) => resolve((answer = response)),
      );
      abandonWhenIdle(sent, () => answer, this.idleTimeoutMs, `${method} ${key}`);
      sent.on('error', () => resolve(undefined));
      sent.end(body);
    });
  }
}
