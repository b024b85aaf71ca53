import net from 'node:net';

/**
 * Runs around every test file (jest.config.js setupFilesAfterEnv). Jest runs many test
 * files in one worker process, and node:net and node:http are shared by all of them. nock
 * patches them as soon as it is imported and keeps them patched until nock.restore(), so a
 * file that does not restore leaves its interceptor, dead with its module registry, in the
 * way of every socket of the files after it in that worker: nock tests then saw replies cut
 * mid-response, loopback tests uncaught ECONNRESETs, and stacked interceptors ran a worker
 * out of memory. nock's README asks for nock.restore() after each test file; this makes it
 * so for every file.
 */
const connectBefore = net.Socket.prototype.connect;

afterAll(async () => {
  if (net.Socket.prototype.connect === connectBefore) return;
  // Only nock patches node:net here; this is the instance the test file itself imported.
  const { default: nock } = await import('nock');
  nock.restore();
  if (net.Socket.prototype.connect !== connectBefore) {
    throw new Error('this test file left node:net patched, and nock.restore() did not undo it: later test files in this worker would not get real sockets');
  }
});
