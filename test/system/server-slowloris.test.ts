import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../helpers/free-port.js';
import { TestResources, writeConfigFile } from '../helpers/resources.js';

const resources = new TestResources('preemptd-slowloris-');

/** A connection that sends the start of a request and then stalls, as a slowloris client does. */
function stalledConnection(port: number, partial: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(partial);
      resolve(socket);
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

/** One probe as the kubelet sends it: a fresh connection, a deadline, the status or why not. */
function probe(port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 'no status');
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

test('/healthz keeps answering while 64 slow connections hold partial requests open', async () => {
  const simulator = await resources.simulator({ provider: 'aws' });
  const port = await freePort();
  const dir = resources.tempDir();
  const config = writeConfigFile(dir, { provider: 'aws', metadataUrl: simulator.url, pollInterval: '200ms', stateDir: `${dir}/state`, server: { listen: `127.0.0.1:${port}` }, steps: [] });
  const agent = resources.agent(['--config', config]);
  await agent.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('local server on'));
  for (let tries = 0; (await probe(port)) !== 200; tries += 1) {
    if (tries > 100) throw new Error('/healthz never answered 200 before the slow connections');
    await delay(50);
  }

  const sockets = await Promise.all(
    Array.from({ length: 64 }, (_, index) => stalledConnection(port, index % 2 === 0 ? 'GET /healthz HTTP/1.1\r\nHost: x\r\n' : 'GET /metr')),
  );
  resources.defer(() => sockets.forEach((socket) => socket.destroy()));

  const answers: Array<number | string> = [];
  for (let index = 0; index < 20; index += 1) {
    answers.push(await probe(port));
    await delay(100);
  }
  expect(answers).toEqual(Array.from({ length: 20 }, () => 200));
});
