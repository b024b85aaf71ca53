import nock from 'nock';
import { silentLogger } from '../../src/lib/log.js';
import { openAzureStore } from '../../src/stores/azure.js';

/**
 * The Azure store's list, stat and delete against nock, in the wire shapes of the Blob
 * service (List Blobs in pages with a NextMarker, Get Blob Properties, Delete Blob).
 */

const MODIFIED = 'Sat, 11 Apr 2026 22:26:58 GMT';
const savedEnv = { ...process.env };

beforeEach(() => {
  nock.disableNetConnect();
  process.env.AZURE_STORAGE_KEY = Buffer.from('not-a-real-key-just-for-tests').toString('base64');
});

afterEach(() => {
  nock.cleanAll();
  nock.enableNetConnect();
  process.env = { ...savedEnv };
});

function blobItem(name: string, size: number): string {
  return `<Blob><Name>${name}</Name><Properties><Last-Modified>${MODIFIED}</Last-Modified><Content-Length>${size}</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>`;
}

function listing(items: string[], next: string): string {
  return `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://azure.test/ckptacct" ContainerName="snapshots"><Prefix>repo/chunks/</Prefix><Blobs>${items.join('')}</Blobs><NextMarker>${next}</NextMarker></EnumerationResults>`;
}

test('lists a prefix page by page, stats a blob and deletes blobs, one already gone', async () => {
  const deleted: string[] = [];
  nock('http://azure.test')
    .get('/ckptacct/snapshots')
    .query((query) => query.comp === 'list' && query.prefix === 'repo/chunks/' && query.marker === undefined)
    .reply(200, listing([blobItem('repo/chunks/aa/1', 5), blobItem('repo/chunks/bb/2', 7)], 'page2'), { 'content-type': 'application/xml' })
    .get('/ckptacct/snapshots')
    .query((query) => query.comp === 'list' && query.marker === 'page2')
    .reply(200, listing([blobItem('repo/chunks/cc/3', 9)], ''), { 'content-type': 'application/xml' })
    .head('/ckptacct/snapshots/repo/latest.json')
    .reply(200, '', { 'content-length': '42', 'last-modified': MODIFIED, 'x-ms-blob-type': 'BlockBlob' })
    .head('/ckptacct/snapshots/repo/none')
    .reply(404, '', { 'x-ms-error-code': 'BlobNotFound' });
  nock('http://azure.test')
    .delete('/ckptacct/snapshots/repo/chunks/aa/1')
    .reply(() => {
      deleted.push('aa/1');
      return [202, ''];
    })
    .delete('/ckptacct/snapshots/repo/chunks/gone')
    .reply(() => {
      deleted.push('gone');
      return [404, '', { 'x-ms-error-code': 'BlobNotFound' }];
    });
  const store = await openAzureStore(
    { scheme: 'az', account: 'ckptacct', container: 'snapshots', prefix: 'repo/' },
    { endpoint: 'http://azure.test/ckptacct', partSize: 8 << 20, queueSize: 1, concurrency: 1, signal: new AbortController().signal, log: silentLogger() },
  );

  const listed = [];
  for await (const object of store.list('repo/chunks/')) listed.push(object);
  expect(listed).toEqual([
    { key: 'repo/chunks/aa/1', size: 5, modified: Date.parse(MODIFIED) },
    { key: 'repo/chunks/bb/2', size: 7, modified: Date.parse(MODIFIED) },
    { key: 'repo/chunks/cc/3', size: 9, modified: Date.parse(MODIFIED) },
  ]);
  expect(await store.stat('repo/latest.json')).toEqual({ key: 'repo/latest.json', size: 42, modified: Date.parse(MODIFIED) });
  expect(await store.stat('repo/none')).toBeUndefined();
  await store.delete(['repo/chunks/aa/1', 'repo/chunks/gone']);
  expect(deleted).toEqual(['aa/1', 'gone']);
});
