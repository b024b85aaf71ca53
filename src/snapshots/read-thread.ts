import type { Worker } from 'node:worker_threads';
import type { ReadReply } from './read-worker.js';

type Listener = (reply: ReadReply) => void;

/** One reading thread (read-worker.ts) and the requests waiting on it, by id. */
export class ReadThread {
  readonly listeners = new Map<number, Listener>();
  failure: Error | undefined;

  constructor(readonly worker: Worker) {
    worker.on('message', (message: ReadReply) => this.listeners.get(message.id)?.(message));
    // A thread that dies fails the files open on it, each with this message; none waits on it.
    const stop = (error?: Error) => {
      this.failure ??= error ?? new Error('the file reading thread stopped');
      for (const [id, listener] of this.listeners) listener({ type: 'error', id, code: undefined, message: this.failure.message });
      this.listeners.clear();
    };
    worker.on('error', stop);
    worker.on('exit', () => stop());
  }
}

/** Shaped like the node:fs error it reports (errno `code`), not coded: callers test the errno. */
export function readError(message: ReadReply): Error {
  const text = message.type === 'error' ? message.message : `unexpected reply ${message.type}`;
  return Object.assign(new Error(text), { code: message.type === 'error' ? message.code : undefined });
}
