import { Transform } from 'node:stream';

/** A pass-through that tells `onBytes` how many bytes went by. */
export function countBytes(onBytes: ((bytes: number) => void) | undefined): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes?.(chunk.length);
      callback(null, chunk);
    },
  });
}
