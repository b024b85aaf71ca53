import { S3Client } from '@aws-sdk/client-s3';
import nock from 'nock';
import { onePart, type Part } from '../src/stores/parts.js';
import { uploadParts } from '../src/stores/s3-multipart.js';

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
