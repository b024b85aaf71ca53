import { request as httpRequest, type Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { FinalizeHandler, FinalizeHandlerArguments, HandlerExecutionContext, HttpRequest, MetadataBearer } from '@smithy/types';

/**
 * Where the SDK sent a GetObject, less its key: the same for every key of the bucket.
 * The region is the one the SDK signed with (after any region redirect it followed).
 */
interface GetTemplate {
  protocol: string;
  hostname: string;
  port: number | undefined;
  /** The path before the key: `/bucket/` (path style) or `/` (virtual-hosted). */
  prefix: string;
  query: Record<string, string>;
  region: string;
}

/** A key as the SDK puts it in a path: each segment URI-encoded (also !'()*), slashes kept. */
function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/**
 * GetObject without the SDK's per-request work. Restore fetches thousands of chunks of a few
 * hundred KiB; measured on loopback, the SDK's middleware and (de)serialising cost 0.81-0.92
 * ms of CPU per GET against 0.30-0.38 ms for a plain request (3.1-3.5 against 1.1-1.5
 * CPU-s/GB on 256 KiB objects). The first GetObject goes through the SDK, which resolves the
 * endpoint, region and credentials; its signed request, seen after signing, is the template
 * for the next ones, signed here with the SDK's own SigV4 signer and credentials. Anything
 * but a 200 (an error, a redirect, a throttle) and any failure to send is left to the SDK:
 * `get` returns undefined and the caller asks the SDK, with its retries and error parsing.
 */
export class DirectGets {
  private template: GetTemplate | undefined;
  private signer: SignatureV4 | undefined;

  constructor(
    private readonly client: S3Client,
    private readonly agents: { http: HttpAgent; https: HttpsAgent },
  ) {
    client.middlewareStack.addRelativeTo(
      (next: FinalizeHandler<object, MetadataBearer>, context: HandlerExecutionContext) => async (args: FinalizeHandlerArguments<object>) => {
        const result = await next(args);
        // Only a request that worked: one the SDK then redirected to another region would not.
        const ok = (result.response as { statusCode?: number }).statusCode === 200;
        if (ok && context.commandName === 'GetObjectCommand' && !this.template) this.learn(args.request as HttpRequest, (args.input as { Key?: string }).Key);
        return result;
      },
      { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'preemptdLearnGetTemplate' },
    );
  }

  private learn(request: HttpRequest, key: string | undefined): void {
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(String(request.headers.authorization ?? ''))?.[1];
    const encoded = key === undefined ? undefined : encodeKey(key);
    if (!region || !encoded || !request.path.endsWith(encoded)) return;
    this.template = {
      protocol: request.protocol,
      hostname: request.hostname,
      port: request.port,
      prefix: request.path.slice(0, request.path.length - encoded.length),
      query: Object.fromEntries(Object.entries(request.query ?? {}).filter((entry): entry is [string, string] => typeof entry[1] === 'string')),
      region,
    };
    this.signer = new SignatureV4({ credentials: this.client.config.credentials, region, service: 's3', sha256: this.client.config.sha256, uriEscapePath: false, applyChecksum: true });
  }

  /** The object's body, or undefined when the SDK should fetch it (not learnt yet, or anything but a 200). */
  async get(key: string, signal: AbortSignal): Promise<Readable | undefined> {
    const template = this.template;
    if (!template || !this.signer) return undefined;
    const host = template.port === undefined ? template.hostname : `${template.hostname}:${template.port}`;
    const signed = await this.signer.sign({
      method: 'GET',
      protocol: template.protocol,
      hostname: template.hostname,
      port: template.port,
      path: template.prefix + encodeKey(key),
      query: template.query,
      headers: { host },
    } as HttpRequest);
    const https = template.protocol === 'https:';
    const query = new URLSearchParams(template.query).toString();
    const response = await new Promise<IncomingMessage | undefined>((resolve) => {
      const sent = (https ? httpsRequest : httpRequest)(
        { method: 'GET', host: template.hostname, port: template.port, path: `${signed.path}${query ? `?${query}` : ''}`, headers: signed.headers, agent: https ? this.agents.https : this.agents.http, signal },
        resolve,
      );
      sent.on('error', () => resolve(undefined));
      sent.end();
    });
    if (response?.statusCode === 200) return response;
    response?.resume();
    signal.throwIfAborted();
    return undefined;
  }
}
