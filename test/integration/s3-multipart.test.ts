import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout } from 'node:timers/promises';
import { S3Client } from '@aws-sdk/client-s3';
import nock from 'nock';
import { onePart, type Part } from '../../src/stores/parts.js';
import { uploadParts } from '../../src/stores/s3-multipart.js';

/**
 * Protocol edge cases of the part uploader that the loopback S3 server (s3rver, used in
 * snapshot.test.ts) cannot be made to produce: nock answers in its place.
 */

const ENDPOINT = 'http://s3.test';
const MIB = 1024 * 1024;

let client: S3Client;

beforeEach(() => {
  nock.disableNetConnect();
  client = new S3Client({ endpoint: ENDPOINT, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1, expectContinueHeader: false });
});

afterEach(() => {
  client.destroy();
  nock.cleanAll();
  nock.enableNetConnect();
});

const twoParts = (): Part[] => [...onePart(Buffer.alloc(5 * MIB, 1)), ...onePart(Buffer.from('tail'))];
const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;

test('a CreateMultipartUpload answer without an UploadId fails the upload with a message naming the key', async () => {
  nock(ENDPOINT).post('/b/ckpt/model.pt').query({ uploads: '' }).reply(200, xml('<InitiateMultipartUploadResult><Key>ckpt/model.pt</Key></InitiateMultipartUploadResult>'));
  const open = new Map<string, string>();

  const upload = uploadParts(client, { Bucket: 'b', Key: 'ckpt/model.pt' }, twoParts(), { queueSize: 2, signal: new AbortController().signal, open });

  await expect(upload).rejects.toThrow('CreateMultipartUpload for ckpt/model.pt answered without an UploadId');
  expect(open.size).toBe(0);
});

test('a failed CompleteMultipartUpload leaves the upload listed for cleanup, with every part sent and released', async () => {
  const scope = nock(ENDPOINT)
    .post('/b/big.bin')
    .query({ uploads: '' })
    .reply(200, xml('<InitiateMultipartUploadResult><Key>big.bin</Key><UploadId>u-1</UploadId></InitiateMultipartUploadResult>'))
    .put('/b/big.bin')
    .query(true)
    .times(2)
    .reply(200, '', { etag: '"p"' })
    .post('/b/big.bin')
    .query({ uploadId: 'u-1' })
    .reply(500, xml('<Error><Code>InternalError</Code><Message>try again</Message></Error>'));
  const released: number[] = [];
  const parts = twoParts().map((part, index) => ({ ...part, release: () => released.push(index) }));
  const open = new Map<string, string>();

  const upload = uploadParts(client, { Bucket: 'b', Key: 'big.bin' }, parts, { queueSize: 2, signal: new AbortController().signal, open });

  await expect(upload).rejects.toThrow('try again');
  expect(scope.isDone()).toBe(true);
  expect(released.sort()).toEqual([0, 1]);
  expect([...open]).toEqual([['u-1', 'big.bin']]);
});

/** A loopback S3 stand-in that holds each UploadPart 30 ms and records how many were in flight at once. */
async function startPartCounter(): Promise<{ server: Server; endpoint: string; mostInFlight(): number; parts(): number }> {
  let inFlight = 0;
  let most = 0;
  let parts = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://s3');
    if (req.method === 'PUT') {
      inFlight += 1;
      most = Math.max(most, inFlight);
      parts += 1;
    }
    req.resume();
    req.on('end', async () => {
      if (req.method === 'PUT') {
        await setTimeout(30);
        inFlight -= 1;
        res.writeHead(200, { etag: '"p"' }).end();
      } else if (url.searchParams.has('uploads')) {
        res.end(xml('<InitiateMultipartUploadResult><UploadId>u-2</UploadId></InitiateMultipartUploadResult>'));
      } else {
        res.end(xml('<CompleteMultipartUploadResult><ETag>"o"</ETag></CompleteMultipartUploadResult>'));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, mostInFlight: () => most, parts: () => parts };
}

test.each([1, 2])('with queueSize %i, no more parts than that are in flight at once', async (queueSize) => {
  nock.enableNetConnect('127.0.0.1');
  const counter = await startPartCounter();
  const local = new S3Client({ endpoint: counter.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, expectContinueHeader: false });
  try {
    const parts = Array.from({ length: 4 }, () => onePart(Buffer.alloc(5 * MIB, 2))[0]!);

    await uploadParts(local, { Bucket: 'b', Key: 'big.bin' }, parts, { queueSize, signal: new AbortController().signal, open: new Map() });

    expect(counter.parts()).toBe(4);
    expect(counter.mostInFlight()).toBe(queueSize);
  } finally {
    local.destroy();
    counter.server.close();
  }
});
