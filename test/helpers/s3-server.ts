import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { setTimeout } from 'node:timers/promises';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';

/**
 * An S3 API server on loopback for tests and benches: `startS3Server` runs @20minutes/s3rver
 * (a real S3 implementation that checks SigV4 signatures) and adds the two multipart calls it
 * lacks, AbortMultipartUpload and ListMultipartUploads, behind its own signature check; it
 * also checks bucket-level calls over the path the SDK signs.
 */

const require = createRequire(import.meta.url);

/** s3rver's fixed test account; it rejects any other key. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  params: Record<string, string | undefined>;
  req: IncomingMessage;
  res: ServerResponse;
  status: number;
  body: unknown;
  mountPath?: string;
  set(name: string, value: string): void;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

interface S3rverInstance {
  middleware: Middleware[];
  store: { getResourcePath(bucket: string, key: string | undefined, resource: string): string };
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;
type S3ErrorClass = new (code: string, message?: string) => Error;

/**
 * An S3 client for test assertions. s3rver computes the signature of a bucket-level request
 * over `/bucket` while the SDK signs `/bucket/`; this client drops that slash before signing.
 */
export function testS3Client(server: S3TestServer): S3Client {
  const client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: S3_CREDENTIALS });
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { path?: string };
      if (request.path === `/${server.bucket}/` && !('uploads' in ((args.request as { query?: object }).query ?? {}))) {
        request.path = `/${server.bucket}`;
      }
      return next(args);
    },
    { step: 'build', name: 'testS3rverBucketPath' },
  );
  return client;
}

export interface PartRequest {
  key: string;
  uploadId: string;
  partNumber: number;
  /** 1 for the first try of this part, 2 for the first retry... */
  attempt: number;
  /** The x-amz-checksum-crc32 header the client sent (s3rver itself ignores it). */
  checksumCrc32: string | undefined;
}

export interface S3ServerOptions {
  bucket?: string;
  /** Answer this UploadPart with a 500 InternalError instead of storing it. */
  failPart?: (part: PartRequest) => boolean;
  /** Hold every UploadPart's answer this long (a slow link); a client that gives up is let go. */
  partDelayMs?: number;
}

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  /** Where s3rver keeps its files (objects can be corrupted here by tests). */
  directory: string;
  /** UploadPart requests seen, failed ones included. */
  partRequests: PartRequest[];
  close(): Promise<void>;
}

/**
 * s3rver seals ListObjectsV2 continuation tokens with DES, which OpenSSL 3 no longer has, so
 * a listing of more than one page failed with a 500. Its DES becomes the identity here (the
 * token is then its plain text, which no test relies on); every other algorithm is untouched.
 */
function letS3rverPaginate(): void {
  const crypto = require('node:crypto') as typeof import('node:crypto') & { s3rverDes?: true };
  if (crypto.s3rverDes) return;
  const plain = () => ({ update: (data: string | Buffer, encoding?: BufferEncoding) => Buffer.from(data as string, encoding), final: () => Buffer.alloc(0) });
  const { createCipheriv, createDecipheriv } = crypto;
  Object.assign(crypto, {
    s3rverDes: true,
    createCipheriv: (algorithm: string, ...rest: unknown[]) => (algorithm === 'des' ? plain() : (createCipheriv as (...args: unknown[]) => unknown)(algorithm, ...rest)),
    createDecipheriv: (algorithm: string, ...rest: unknown[]) => (algorithm === 'des' ? plain() : (createDecipheriv as (...args: unknown[]) => unknown)(algorithm, ...rest)),
  });
}

/**
 * s3rver reads a Range's last byte as `end || Infinity`, so `bytes=0-0` (the first byte only)
 * gave the whole object. Its store now answers that range as S3 does: one byte.
 */
function letS3rverReadTheFirstByte(): void {
  type Stored = { content: { destroy(): void } | null; range?: { start: number; end: number } } | null;
  interface Store {
    getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<Stored>;
    getResourcePath(bucket: string, key: string, resource: string): string;
    s3rverFirstByte?: true;
  }
  const store = (require('@20minutes/s3rver/lib/stores/filesystem') as { prototype: Store }).prototype;
  if (store.s3rverFirstByte) return;
  const { getObject } = store;
  store.s3rverFirstByte = true;
  store.getObject = async function (this: Store, bucket, key, options) {
    const object = await getObject.call(this, bucket, key, options);
    if (options?.end !== 0 || !object?.content) return object;
    object.content.destroy();
    object.content = createReadStream(this.getResourcePath(bucket, key, 'object'), { start: 0, end: 0 });
    object.range = { start: 0, end: 0 };
    return object;
  };
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  letS3rverPaginate();
  letS3rverReadTheFirstByte();
  const S3rver = require('@20minutes/s3rver') as S3rverClass;
  const S3Error = require('@20minutes/s3rver/lib/models/error') as S3ErrorClass;
  const authenticate = (require('@20minutes/s3rver/lib/middleware/authentication') as () => Middleware)();
  const bucket = options.bucket ?? 'snapshots';
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: process.env.S3RVER_DEBUG !== "1",
    directory,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  const partRequests: PartRequest[] = [];
  const uploadsDir = (name: string) => server.store.getResourcePath(name, undefined, 'uploads');

  // Runs before s3rver's own routes; s3rver composes its middleware list when it listens.
  const extraOperations: Middleware = async (ctx, next) => {
    const [, name, ...keyParts] = ctx.path.split('/');
    const key = keyParts.join('/');
    const uploadId = ctx.query.uploadId;
    const isAbort = ctx.method === 'DELETE' && key && uploadId !== undefined;
    const isList = ctx.method === 'GET' && !key && ctx.query.uploads !== undefined;
    const isPart = ctx.method === 'PUT' && key && uploadId !== undefined && ctx.query.partNumber !== undefined;
    // Any other bucket-level call (ListObjectsV2, DeleteObjects) the SDK signs over `/bucket/`,
    // where s3rver checks `/bucket`: checked here as signed, then passed on as checked.
    const isBucketCall = ctx.path === `/${name}/` && !isList;
    if (name && isBucketCall) {
      ctx.params = { bucket: `${name}/` };
      ctx.mountPath = '';
      await authenticate(ctx, async () => {
        delete ctx.req.headers.authorization;
        ctx.params = {};
        await next();
      });
      return;
    }
    if (!name || !(isAbort || isList || isPart)) return next();
    if (isPart) {
      // s3rver checks this request's signature itself when it stores the part.
      const partNumber = Number(ctx.query.partNumber);
      const attempt = partRequests.filter((p) => p.uploadId === uploadId && p.partNumber === partNumber).length + 1;
      const checksum = ctx.req.headers['x-amz-checksum-crc32'];
      const request = { key, uploadId: uploadId!, partNumber, attempt, checksumCrc32: typeof checksum === 'string' ? checksum : undefined };
      partRequests.push(request);
      if (!options.failPart?.(request)) {
        await next();
        // Held after storing: a paused socket would not notice the client cancelling.
        if (options.partDelayMs) await Promise.race([setTimeout(options.partDelayMs), once(ctx.res, 'close')]);
        return;
      }
      ctx.req.resume();
      await once(ctx.req, 'end');
      throw new S3Error('InternalError', 'injected part failure');
    }
    // s3rver's signature check reads the resource from params; the SDK signs the bucket
    // listing as `/bucket/`, hence the slash kept on the bucket name.
    ctx.params = key ? { bucket: name, key } : { bucket: `${name}/` };
    ctx.mountPath = '';
    await authenticate(ctx, async () => {
      if (isAbort) {
        const dir = join(uploadsDir(name), uploadId!);
        const exists = await readFile(join(dir, 'key')).then(() => true, () => false);
        if (!exists) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
        await rm(dir, { recursive: true, force: true });
        ctx.status = 204;
        return;
      }
      const uploads = await listUploads(uploadsDir(name));
      const entries = uploads.map((u) => `<Upload><Key>${escapeXml(u.key)}</Key><UploadId>${u.uploadId}</UploadId></Upload>`);
      ctx.set('content-type', 'application/xml');
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${escapeXml(name)}</Bucket><IsTruncated>false</IsTruncated>${entries.join('')}</ListMultipartUploadsResult>`;
    });
  };
  server.middleware.unshift(extraOperations);
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    directory,
    partRequests,
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Uploads in progress. s3rver removes a completed upload's folder after it has answered
 * CompleteMultipartUpload, so a folder listed here may be gone a moment later: that upload
 * is over, not in progress (reading its key used to fail the whole listing with a 500).
 */
async function listUploads(dir: string): Promise<{ key: string; uploadId: string }[]> {
  const ids = await readdir(dir).catch(() => [] as string[]);
  const uploads = await Promise.all(
    ids.map(async (uploadId) => {
      const key = await readFile(join(dir, uploadId, 'key'), 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      return key === undefined ? [] : [{ uploadId, key }];
    }),
  );
  return uploads.flat();
}
